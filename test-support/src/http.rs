//! The plain HTTP calls every client here makes, so a status and a JSON
//! body are read one way whichever service answers.

use serde_json::Value;

/// POSTs `body` as JSON with extra headers; the status and the JSON answer
/// (`Null` when the answer is not JSON).
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = http.post(url).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A GET: the status and the text of the answer.
pub async fn get_text(http: &reqwest::Client, url: &str) -> (u16, String) {
    let r = http.get(url).send().await.expect("send");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

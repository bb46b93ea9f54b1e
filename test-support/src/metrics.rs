//! Reading a service's Prometheus `/metrics`.

use std::collections::BTreeSet;

/// The text of `{base}/metrics`, which must answer 200.
pub async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let (status, text) = crate::http::get_text(http, &format!("{base}/metrics")).await;
    assert_eq!(status, 200, "{base}/metrics");
    text
}

/// The metric names in Prometheus text (`name{labels} value` or `name value`
/// lines; `# HELP`/`# TYPE` lines ignored).
pub fn metric_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_skip_comments_and_labels() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\nb 1\n\n";
        let names: Vec<String> = super::metric_names(text).into_iter().collect();
        assert_eq!(names, ["a_total", "b"]);
    }
}

//! A real headless Chromium (Debian's `chromium`) driven over the Chrome
//! DevTools Protocol on a WebSocket: navigate, evaluate, type keys, take
//! screenshots, and record every request the page makes and every error
//! it logs (CSP violations included), so a test can say that nothing left
//! for a third party.
//!
//! No WebDriver server is needed: Chromium speaks the protocol itself
//! (`--remote-debugging-port=0`), and the WebSocket client is the one the
//! subscription tests use. Name resolution is switched off for every host
//! but the loopback (`--host-resolver-rules`), so a request for a CDN
//! could not succeed even on a machine with internet access.

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Where the browser is: `$CHROMIUM`, or the usual names on `PATH`.
pub fn find() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The browser, or `None` (with a message) where a developer may skip:
/// in CI (`CI=true`) a missing browser fails the test.
pub fn required() -> Option<PathBuf> {
    match find() {
        Some(path) => Some(path),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and no Chromium found: install Debian's `chromium` (.ci/run does)")
        }
        None => {
            eprintln!(
                "SKIPPED: no Chromium on PATH (apt-get install chromium, or set CHROMIUM=/path); \
                 CI runs this test"
            );
            None
        }
    }
}

/// One headless browser with one page.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    socket: Socket,
    next_id: u64,
    /// Every URL the page requested, in order.
    pub requests: Vec<String>,
    /// Errors the page logged or threw (CSP violations among them).
    pub errors: Vec<String>,
}

impl Browser {
    pub async fn launch(binary: &Path) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "sentinel-chromium-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let mut child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        // Chromium prints the browser's WebSocket address on stderr; the
        // rest of stderr is drained so that it never blocks on a full pipe.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("ws://")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line[at..].trim().to_owned());
                }
            }
        });
        let browser_ws = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Chromium printed no DevTools address within 30 s");
        let port = browser_ws
            .trim_start_matches("ws://")
            .split(['/', ':'])
            .nth(1)
            .expect("port")
            .to_owned();
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("DevTools target list")
            .json()
            .await
            .expect("targets as JSON");
        let page_ws = targets
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (socket, _) = tokio_tungstenite::connect_async(page_ws.as_str())
            .await
            .expect("DevTools WebSocket");
        let mut browser = Browser {
            child,
            profile,
            socket,
            next_id: 0,
            requests: Vec::new(),
            errors: Vec::new(),
        };
        for domain in [
            "Page.enable",
            "Network.enable",
            "Runtime.enable",
            "Log.enable",
        ] {
            browser.call(domain, json!({})).await;
        }
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        browser
    }

    /// Sends one command and waits for its answer, recording the events
    /// that arrive meanwhile.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, &params).await {
            Ok(result) => result,
            Err(error) => panic!("{method} failed: {error}"),
        }
    }

    /// The same, with the protocol's error as an `Err`.
    async fn try_call(&mut self, method: &str, params: &Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(Message::Text(message.into()))
            .await
            .expect("send to Chromium");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("Chromium did not answer {method}"))
                .expect("Chromium closed the connection")
                .expect("DevTools frame");
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if value["id"] == id {
                if let Some(error) = value.get("error") {
                    return Err(error.clone());
                }
                return Ok(value["result"].clone());
            }
            self.record(&value);
        }
    }

    fn record(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                if let Some(url) = params["request"]["url"].as_str() {
                    self.requests.push(url.to_owned());
                }
            }
            Some("Network.webSocketCreated") => {
                if let Some(url) = params["url"].as_str() {
                    self.requests.push(url.to_owned());
                }
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(format!(
                    "{}: {}",
                    params["entry"]["source"].as_str().unwrap_or("log"),
                    params["entry"]["text"].as_str().unwrap_or_default()
                ));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                self.errors.push(format!(
                    "exception: {} {}",
                    details["text"].as_str().unwrap_or_default(),
                    details["exception"]["description"]
                        .as_str()
                        .unwrap_or_default()
                ));
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors
                    .push(format!("console.error: {}", params["args"]));
            }
            _ => {}
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise); its value
    /// (null when the expression made the page navigate away).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        let result = match self.try_call("Runtime.evaluate", &params).await {
            Ok(result) => result,
            Err(e) if e.to_string().contains("navigated or closed") => return Value::Null,
            Err(e) => panic!("evaluating {expression} failed: {e}"),
        };
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression} threw: {e}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy in the page.
    pub async fn wait_for(&mut self, expression: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let probe = format!(
                "(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"
            );
            if self.eval(&probe).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self
                    .eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
                    .await;
                panic!(
                    "waited {within:?} for `{expression}`; errors: {:?}; page: {body}",
                    self.errors
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Loads `url` and waits for the document to be complete.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for(
            &format!(
                "location.href.startsWith({}) && document.readyState === 'complete'",
                serde_json::to_string(url).expect("json")
            ),
            Duration::from_secs(30),
        )
        .await;
    }

    /// Types one key (`"j"`, `"Enter"`), as a person would.
    pub async fn key(&mut self, key: &str) {
        let (code, text, vk) = match key {
            "Enter" => ("Enter".to_owned(), "\r".to_owned(), 13),
            k => (
                format!("Key{}", k.to_uppercase()),
                k.to_owned(),
                k.to_uppercase().chars().next().map_or(0, |c| c as u32),
            ),
        };
        for kind in ["keyDown", "keyUp"] {
            let mut params =
                json!({"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk});
            if kind == "keyDown" {
                params["text"] = json!(text);
            }
            self.call("Input.dispatchKeyEvent", params).await;
        }
    }

    /// A PNG of the whole page (1280 px wide, at most 2,400 high),
    /// written to `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        let height = self
            .eval("Math.min(2400, Math.max(900, document.documentElement.scrollHeight))")
            .await
            .as_f64()
            .unwrap_or(900.0);
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}),
            )
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, bytes).expect("write screenshot");
    }

    /// Every request so far that went anywhere but `origin` (or was not
    /// a `data:` URL the page built itself).
    pub fn foreign_requests(&self, origin: &str) -> Vec<String> {
        let ws_origin = origin.replacen("http://", "ws://", 1);
        self.requests
            .iter()
            .filter(|u| {
                !(u.starts_with(&format!("{origin}/"))
                    || u.starts_with(&format!("{ws_origin}/"))
                    || u.starts_with("data:")
                    || u.starts_with("about:"))
            })
            .cloned()
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

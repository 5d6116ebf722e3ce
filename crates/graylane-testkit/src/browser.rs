//! A real browser for UI tests: Debian's headless Chromium, driven through `chromedriver`'s
//! WebDriver protocol (W3C) on an ephemeral loopback port. Both come from the system
//! (`scripts/services up` installs `chromium` and `chromium-driver`); nothing is downloaded.
//!
//! The calls block (plain HTTP/1.1 to the driver): from a multi-threaded Tokio test, make them
//! inside `tokio::task::block_in_place`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// A `chromedriver` with one headless Chromium session; both stop on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

/// What went wrong talking to the driver.
#[derive(Debug)]
pub struct BrowserError(pub String);

impl std::fmt::Display for BrowserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BrowserError {}

/// Where Debian puts Chromium (`CHROMIUM` overrides).
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("chromium")
            .to_owned()
    })
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session with a `width`×`height` window.
    pub fn start(width: u32, height: u32) -> Result<Browser, BrowserError> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| BrowserError(format!("a free port: {e}")))?
            .port();
        let driver = Command::new(std::env::var("CHROMEDRIVER").unwrap_or("chromedriver".into()))
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                BrowserError(format!(
                    "chromedriver is not installed (scripts/services up): {e}"
                ))
            })?;
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while browser.call("GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                return Err(BrowserError(format!(
                    "chromedriver did not answer on {port}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", format!("--window-size={width},{height}")],
            },
        }}});
        let answer = browser.call("POST", "/session", Some(caps))?;
        browser.session = answer["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError(format!("no session in {answer}")))?
            .to_owned();
        Ok(browser)
    }

    /// Opens `url` and waits until it has loaded.
    pub fn open(&self, url: &str) -> Result<(), BrowserError> {
        self.session_call("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns
    /// what it returns.
    pub fn eval(&self, script: &str, args: Vec<Value>) -> Result<Value, BrowserError> {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Polls `script` until it returns something other than `null`/`false`, for at most
    /// `within`; that value, or an error with the last one.
    pub fn wait_for(&self, script: &str, within: Duration) -> Result<Value, BrowserError> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.eval(script, Vec::new())?;
            if !(v.is_null() || v == Value::Bool(false)) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(BrowserError(format!(
                    "still {v} after {within:?}: {script}"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Result<Vec<u8>, BrowserError> {
        let v = self.session_call("GET", "/screenshot", None)?;
        let data = v
            .as_str()
            .ok_or_else(|| BrowserError("no screenshot".into()))?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| BrowserError(format!("screenshot: {e}")))
    }

    fn session_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body)
    }

    /// One WebDriver command: its `value`, or the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, BrowserError> {
        let fail = |e: &dyn std::fmt::Display| BrowserError(format!("{method} {path}: {e}"));
        let mut stream =
            TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).map_err(|e| fail(&e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| fail(&e))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .map_err(|e| fail(&e))?;
        // chromedriver keeps the connection open whatever the request says: read the head,
        // then exactly the body its length gives.
        let mut response = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut buf).map_err(|e| fail(&e))?;
            if n == 0 {
                return Err(fail(&"the driver closed the connection"));
            }
            response.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&response[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| fail(&"no content-length in the answer"))?;
        while response.len() < head_end + length {
            let n = stream.read(&mut buf).map_err(|e| fail(&e))?;
            if n == 0 {
                return Err(fail(&"the answer ended early"));
            }
            response.extend_from_slice(&buf[..n]);
        }
        let body = String::from_utf8_lossy(&response[head_end..head_end + length]);
        let json: Value = serde_json::from_str(&body).map_err(|e| fail(&e))?;
        let value = json.get("value").cloned().unwrap_or(Value::Null);
        if value.get("error").is_some() {
            return Err(fail(&value));
        }
        Ok(value)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.session_call("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

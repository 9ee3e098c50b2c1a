//! A small blocking HTTP/1.1 client for the admin listener, written out so
//! tests also control the bytes (hostile requests), and a Prometheus text
//! parser: Prometheus's own Python client, run in the test virtualenv.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP answer: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn address(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

/// Sends `raw` as is and reads until the server closes; `None` if it sent nothing back.
pub fn raw(base: &str, raw: &[u8]) -> Option<Answer> {
    let mut stream = TcpStream::connect(address(base)).expect("connect to the admin listener");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = stream.write_all(raw);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Answer { status, headers, body: body.to_string() })
}

/// One request on its own connection (`Connection: close`).
pub fn request(base: &str, method: &str, path: &str, body: Option<&str>) -> Answer {
    let body = body.unwrap_or("");
    let host = address(base);
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(base, request.as_bytes()).unwrap_or_else(|| panic!("no answer to {method} {path}"))
}

pub fn get(base: &str, path: &str) -> Answer {
    request(base, "GET", path, None)
}

pub fn post(base: &str, path: &str, body: &serde_json::Value) -> Answer {
    request(base, "POST", path, Some(&body.to_string()))
}

pub fn delete(base: &str, path: &str) -> Answer {
    request(base, "DELETE", path, None)
}

/// One sample of a scrape: name, labels and value.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A scrape parsed by `prometheus_client.parser.text_string_to_metric_families`;
/// fails if Prometheus's parser rejects it.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = []\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       out.append({'name': s.name, 'labels': s.labels, 'value': s.value})\n\
        print(json.dumps(out))\n";
    let mut child = std::process::Command::new(super::clients::python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "Prometheus's parser rejected the scrape: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Python's json writes +Inf etc. as Infinity, which serde_json refuses; no sample value here is infinite.
    serde_json::from_slice(&output.stdout).expect("parser output")
}

/// The sum of `name` over samples whose labels include `labels`.
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

//! The admin HTTP listener (`admin.listeners`, default `127.0.0.1:9644`):
//! Prometheus metrics at `/metrics`, `/health` and `/ready`, and the web
//! console at `/` with its JSON API under `/api/`.
//!
//! It is served by hyper (HTTP/1.1) on [`ADMIN_SHARD`]'s executor, in a
//! task queue of its own with a small share, so a slow or hostile client
//! waits behind Kafka work and never ahead of it. Connections, request head
//! and body sizes, each read and write, and a connection's lifetime are
//! bounded (see `constants`). Numbers come from every shard's snapshot,
//! asked for through the shard client at request time; the shards' hot
//! paths only bump their own plain counters.

pub mod api;
mod console;
pub(crate) mod io;
pub mod metrics;
pub mod records;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::constants::ADMIN_REQUEST_BODY_BYTES_MAX;
use crate::shard::Shard;

/// The shard that serves the admin listener.
pub const ADMIN_SHARD: usize = 0;
/// How long `/ready` waits for every shard to answer.
const READY_TIMEOUT_MS: u64 = 2_000;

/// What every admin request needs.
pub struct Admin {
    pub shard: Rc<Shard>,
    pub address: SocketAddr,
    pub started: Instant,
    /// The listener the console's own Kafka requests count as coming in on (the first).
    pub console: Rc<crate::server::listener::ListenerRuntime>,
}

/// Serves the admin listener until the broker stops.
pub async fn listen(shard: Rc<Shard>, listener: std::net::TcpListener, started: Instant) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let console = crate::server::listener::ListenerRuntime::new(shard.config.listeners[0].clone())
        .map(Rc::new)
        .map_err(std::io::Error::other)?;
    let admin = Rc::new(Admin { shard: shard.clone(), address, started, console });
    io::serve(&shard, listener, "admin", move |request| {
        let admin = admin.clone();
        async move { route(&admin, request).await }
    })
    .await
}

type HttpResponse = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_str(content_type)
            .unwrap_or(hyper::header::HeaderValue::from_static("text/plain")),
    );
    response.headers_mut().insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    response
}

fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    respond(status, "text/plain; charset=utf-8", body.into())
}

fn json(status: StatusCode, value: &serde_json::Value) -> HttpResponse {
    respond(status, "application/json", serde_json::to_vec(value).unwrap_or_default())
}

async fn route(admin: &Admin, request: Request<Incoming>) -> HttpResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let accept =
        request.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    match (&method, path.as_str()) {
        (&Method::GET, "/metrics") => {
            let scrape = metrics::gather(&admin.shard, admin.started).await;
            let (body, content_type) = metrics::encode(scrape, accept.contains("application/openmetrics-text"));
            respond(StatusCode::OK, content_type, body)
        }
        (&Method::GET, "/health") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/ready") => ready(&admin.shard).await,
        (&Method::GET, _) if console::asset(&path).is_some() => {
            let (content_type, body) = console::asset(&path).expect("checked");
            respond(StatusCode::OK, content_type, body)
        }
        (_, p) if p.starts_with("/api/") => {
            if let Err((status, e)) = same_origin_json(&method, request.headers()) {
                return json(status, &e.body());
            }
            let segments: Vec<String> = p["/api/".len()..].split('/').map(percent_decode).collect();
            let body = match Limited::new(request.into_body(), ADMIN_REQUEST_BODY_BYTES_MAX).collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => {
                    let e =
                        api::ApiError::bad_request(format!("body larger than {ADMIN_REQUEST_BODY_BYTES_MAX} bytes"));
                    return json(StatusCode::PAYLOAD_TOO_LARGE, &e.body());
                }
            };
            match api::handle(admin, &method, &segments, &query, &body).await {
                Ok(value) => json(StatusCode::OK, &value),
                Err(e) => json(StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &e.body()),
            }
        }
        (&Method::GET, _) => text(StatusCode::NOT_FOUND, "not found\n"),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}

/// Refuses what another web page could make a browser send: an action
/// (anything but GET) from another origin, or a POST whose body is not
/// declared JSON (a cross-site form or a "simple" fetch cannot declare it
/// without the browser asking first, and this listener allows no such asking).
fn same_origin_json(method: &Method, headers: &hyper::HeaderMap) -> Result<(), (StatusCode, api::ApiError)> {
    if method == Method::GET {
        return Ok(());
    }
    let header = |name| headers.get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok());
    if let Some(origin) = header(hyper::header::ORIGIN) {
        let host = header(hyper::header::HOST).unwrap_or_default();
        if origin.strip_prefix("http://") != Some(host) {
            let e = api::ApiError::bad_request(format!("actions from origin {origin} are refused"));
            return Err((StatusCode::FORBIDDEN, e));
        }
    }
    let json_body = header(hyper::header::CONTENT_TYPE).is_some_and(|t| t.starts_with("application/json"));
    if method == Method::POST && !json_body {
        let e = api::ApiError::bad_request("a POST body must be sent as Content-Type: application/json");
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, e));
    }
    Ok(())
}

/// Ready once every shard listens (its partitions recovered first) and answers, and the broker is not stopping.
async fn ready(shard: &Rc<Shard>) -> HttpResponse {
    let shards = shard.router.shards;
    if shard.lifecycle.stopping() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n");
    }
    let listening = shard.lifecycle.listening_shards();
    if listening < shards {
        return text(StatusCode::SERVICE_UNAVAILABLE, format!("{listening} of {shards} shards listening\n"));
    }
    let pings = shard.on_every_shard(|_| async {});
    let timeout = glommio::timer::sleep(Duration::from_millis(READY_TIMEOUT_MS));
    futures::pin_mut!(pings, timeout);
    match futures::future::select(pings, timeout).await {
        futures::future::Either::Left((answers, _)) => match answers.iter().position(Result::is_err) {
            None => text(StatusCode::OK, "ready\n"),
            Some(id) => text(StatusCode::SERVICE_UNAVAILABLE, format!("shard {id} does not answer\n")),
        },
        futures::future::Either::Right(_) => {
            text(StatusCode::SERVICE_UNAVAILABLE, format!("a shard did not answer within {READY_TIMEOUT_MS} ms\n"))
        }
    }
}

/// Decodes `%XX` escapes (and `+` as a space, as forms send it); bad escapes stay as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_latency_apis_are_produce_and_fetch() {
        use kafka_protocol::messages::ApiKey;
        let keys = [ApiKey::Produce as i16, ApiKey::Fetch as i16];
        assert_eq!(crate::metrics::LIVE_LATENCY_API_KEYS, keys, "the overview shows these two");
    }

    #[test]
    fn percent_escapes_decode_and_bad_ones_stay() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41"), "A");
    }
}

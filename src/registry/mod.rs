//! The built-in schema registry: Confluent Schema Registry's REST API on
//! its own listener (`schema.registry.listeners`, default
//! `127.0.0.1:8081`), served by hyper on [`ADMIN_SHARD`] like the admin
//! endpoints. The logic is `sluice-registry`'s; here are the HTTP side and
//! the store (`_schemas`, see [`store`]). Changes run one at a time; each
//! is written to `_schemas` and synced before it is answered, and applied
//! from there, so an answer is never lost in a crash and a read after it
//! sees it.

pub mod store;
pub mod validation;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use sluice_registry::api::{self, Answer};
use sluice_registry::{Registry, RegistryError};

use crate::admin::{percent_decode, ADMIN_SHARD};
use crate::constants::SCHEMA_REGISTRY_REQUEST_BODY_BYTES_MAX;
use crate::shard::Shard;

/// The registry's state and where it stands in `_schemas`.
pub struct SchemaRegistry {
    store: store::Store,
    registry: RefCell<Registry>,
    /// The offset of `_schemas` the state has applied up to.
    applied_to: Cell<i64>,
    /// Held while a change is checked, written and applied.
    changing: futures::lock::Mutex<()>,
    /// Held while the state catches up with `_schemas`, so that one read's
    /// records are applied whole before anyone answers from the state.
    catching_up: futures::lock::Mutex<()>,
    ready: Cell<bool>,
}

thread_local! {
    /// The registry of this thread's shard: set on [`ADMIN_SHARD`] at start.
    static REGISTRY: RefCell<Option<Rc<SchemaRegistry>>> = const { RefCell::new(None) };
}

/// Sets up the registry's state on [`ADMIN_SHARD`], whether or not its
/// listener is on: broker-side schema id validation reads `_schemas` too
/// (which another registry may write). `address`: the listener's.
pub fn install(shard: Rc<Shard>, address: Option<std::net::SocketAddr>) -> Result<Rc<SchemaRegistry>, String> {
    debug_assert_eq!(shard.id, ADMIN_SHARD);
    let runtime = crate::server::listener::ListenerRuntime::new(shard.config.listeners[0].clone())
        .map(Rc::new)
        .map_err(|e| format!("schema registry: {e}"))?;
    let address = address.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let registry = Rc::new(SchemaRegistry {
        store: store::Store::new(shard, runtime, address),
        registry: RefCell::new(Registry::default()),
        applied_to: Cell::new(0),
        changing: futures::lock::Mutex::new(()),
        catching_up: futures::lock::Mutex::new(()),
        ready: Cell::new(false),
    });
    REGISTRY.with(|r| *r.borrow_mut() = Some(registry.clone()));
    Ok(registry)
}

/// This shard's registry, on [`ADMIN_SHARD`] once [`install`]ed.
pub fn installed() -> Option<Rc<SchemaRegistry>> {
    REGISTRY.with(|r| r.borrow().clone())
}

impl SchemaRegistry {
    /// Brings the state up to date with `_schemas` (created on first use).
    async fn catch_up(&self) -> Result<(), RegistryError> {
        if !self.ready.get() {
            self.store.ensure_topic().await?;
            self.ready.set(true);
        }
        self.catch_up_existing().await
    }

    /// Brings the state up to date with `_schemas` if it exists (an empty
    /// registry if not), without creating it.
    async fn catch_up_existing(&self) -> Result<(), RegistryError> {
        if !self.store.exists() {
            return Ok(());
        }
        let _catching_up = self.catching_up.lock().await;
        let caught = self.store.read_from(self.applied_to.get()).await?;
        let mut registry = self.registry.borrow_mut();
        if caught.reset {
            *registry = Registry::default();
        }
        for record in &caught.records {
            registry.apply(record);
        }
        self.applied_to.set(caught.next);
        Ok(())
    }

    /// The state, caught up with `_schemas` (not created if missing).
    pub async fn state_caught_up(&self) -> Result<std::cell::Ref<'_, Registry>, RegistryError> {
        self.catch_up_existing().await?;
        Ok(self.registry.borrow())
    }

    /// Answers one operation: a query from the state caught up with
    /// `_schemas`; a change under the lock, written and synced, then applied.
    pub async fn answer(&self, operation: api::Operation) -> Result<serde_json::Value, RegistryError> {
        let _changing = if operation.changes() { Some(self.changing.lock().await) } else { None };
        self.catch_up().await?;
        let answer = api::answer(&self.registry.borrow(), &operation)?;
        match answer {
            Answer::Json(body) => Ok(body),
            Answer::Write(records, body) => {
                self.store.write(&records).await?;
                self.catch_up().await?;
                Ok(body)
            }
        }
    }
}

/// Serves the registry's listener until the broker stops.
pub async fn listen(
    shard: Rc<Shard>,
    registry: Rc<SchemaRegistry>,
    listener: std::net::TcpListener,
) -> std::io::Result<()> {
    debug_assert_eq!(shard.id, ADMIN_SHARD);
    crate::admin::io::serve(&shard, listener, "schema registry", move |request| {
        let registry = registry.clone();
        async move { route(&registry, request).await }
    })
    .await
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(serde_json::to_vec(value).unwrap_or_default())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/vnd.schemaregistry.v1+json"),
    );
    response
}

fn error(e: &RegistryError) -> Response<Full<Bytes>> {
    json(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &api::error_body(e))
}

async fn route(registry: &SchemaRegistry, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().as_str().to_string();
    let segments: Vec<String> = request.uri().path().split('/').map(percent_decode).collect();
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let body = match Limited::new(request.into_body(), SCHEMA_REGISTRY_REQUEST_BODY_BYTES_MAX).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            let e = RegistryError::InvalidRequest(format!(
                "body larger than {SCHEMA_REGISTRY_REQUEST_BODY_BYTES_MAX} bytes"
            ));
            return json(StatusCode::PAYLOAD_TOO_LARGE, &api::error_body(&e));
        }
    };
    let operation = match api::parse(&method, &segments, &query, &body) {
        Ok(operation) => operation,
        Err(e) => return error(&e),
    };
    match registry.answer(operation).await {
        Ok(body) => json(StatusCode::OK, &body),
        Err(e) => error(&e),
    }
}

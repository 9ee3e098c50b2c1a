//! One client connection: read frames, run each request on its own task,
//! write responses in request order.
//!
//! The connection owns its read buffer; a frame's length is checked before
//! its body is allocated. At most `INFLIGHT_REQUESTS_PER_CONNECTION_MAX`
//! requests are in flight: reading pauses while the queue is full.
//!
//! On a SASL listener only ApiVersions and the SASL APIs are served until the
//! client has logged in, one at a time and with frames no larger than
//! `sasl.server.max.receive.size`; anything else closes the connection, as
//! Kafka does. SASL requests are always answered before the next frame is
//! read, so that a login (or re-login) is complete before what follows it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use glommio::channels::local_channel;
use kafka_protocol::messages::ApiKey;

use crate::constants::{
    CONNECTION_READ_CHUNK_BYTES, CONNECTION_WRITE_BUFFER_BYTES, FRAME_BODY_PREALLOC_BYTES_MAX,
    INFLIGHT_REQUESTS_PER_CONNECTION_MAX,
};
use crate::handlers;
use crate::metrics::RequestTimes;
use crate::protocol::frame::{self, ResponseFrame};
use crate::shard::Shard;

use super::session::{RequestContext, Session};

/// A request's answer as the writer waits for it: a task's, or one already made.
type PendingAnswer = Pin<Box<dyn Future<Output = Option<Result<Answered, ()>>>>>;

/// Serves one connection until the client closes it, sends a bad frame, or the broker stops.
pub async fn serve<S>(shard: Rc<Shard>, session: Rc<Session>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let peer = session.peer.to_string();
    let idle = std::time::Duration::from_millis(shard.config.connections_max_idle_ms);
    // Requests of this connection not yet answered: a connection waiting for
    // its answers is not idle.
    let pending = Rc::new(Cell::new(0usize));
    let (mut reader, writer) = stream.split();
    let (queue, responses) = local_channel::new_bounded::<PendingAnswer>(INFLIGHT_REQUESTS_PER_CONNECTION_MAX);
    // Set when a request is refused: the connection ends after the answers before it.
    let refused = Rc::new(Cell::new(false));

    let refused_in_writer = refused.clone();
    let shard_in_writer = shard.clone();
    let writer_task = glommio::spawn_local(async move {
        let mut out = BufWriter::with_capacity(CONNECTION_WRITE_BUFFER_BYTES, writer);
        while let Some(pending) = responses.recv().await {
            let answered = match pending.await {
                Some(Ok(answered)) => answered,
                Some(Err(())) | None => {
                    refused_in_writer.set(true);
                    break;
                }
            };
            let picked = Instant::now();
            if let Some(frame) = &answered.frame {
                for chunk in &frame.chunks {
                    if out.write_all(chunk).await.is_err() {
                        return;
                    }
                }
                if out.flush().await.is_err() {
                    return;
                }
            }
            shard_in_writer.metrics.record_request(answered.api_key, answered.times(picked, Instant::now()));
            if answered.last {
                refused_in_writer.set(true);
                break;
            }
        }
        let _ = out.flush().await;
        let _ = out.close().await;
    })
    .detach();

    while !refused.get() && !shard.lifecycle.stopping() {
        // A throttled client is not read from until its throttle time has passed.
        if let Some(until) = session.muted_until(Instant::now()) {
            glommio::timer::sleep(until.saturating_duration_since(Instant::now())).await;
        }
        let mut prefix = [0u8; 4];
        match read_prefix(&mut reader, &mut prefix, &pending).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracing::info!(%peer, idle_ms = idle.as_millis() as u64, "closing idle connection");
                break;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection read failed");
                break;
            }
        }
        let authenticated = session.authenticated();
        let frame_bytes_max = if authenticated {
            shard.config.socket_request_max_bytes
        } else {
            shard.config.security.sasl_receive_bytes_max.min(shard.config.socket_request_max_bytes)
        };
        let length = match frame::frame_length(prefix, frame_bytes_max) {
            Ok(length) => length,
            Err(e) => {
                tracing::warn!(%peer, authenticated, error = %e, "closing connection: bad frame length");
                break;
            }
        };
        // The shard's budget for request bytes: reading waits while it is spent.
        let Ok(budget) = shard.request_budget.acquire_static_permit(length as u64).await else { break };
        let body = match read_body(&mut reader, length).await {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: truncated frame");
                break;
            }
        };
        let read_at = Instant::now();
        let request = match frame::parse_request(Bytes::from(body)) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad request header");
                break;
            }
        };
        let frame::RequestFrame { api_key: api, header, body } = request;
        let sasl_api = matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
        if !authenticated && !sasl_api && api != ApiKey::ApiVersions {
            tracing::warn!(%peer, api = ?api, "closing connection: a request before SASL authentication");
            break;
        }
        if !sasl_api && session.expired(read_at) {
            tracing::info!(%peer, "closing connection: its SASL session expired (connections.max.reauth.ms)");
            break;
        }
        // Produce requests reach their partitions in the order they were read.
        let turn = Cell::new((api == ApiKey::Produce).then(|| session.produce_turns.take()));
        let ctx = RequestContext { header, session: session.clone(), turn };
        let run = Request { shard: shard.clone(), ctx, api, body, read_at, refused: refused.clone() };
        let answer: PendingAnswer = if sasl_api || !authenticated {
            // Answered before the next frame is read: the login state it changes
            // decides how that frame is treated.
            let answer = run.answer(budget).await;
            let last = answer.as_ref().map_or(true, |a| a.last);
            if queue.send(Box::pin(futures::future::ready(Some(answer)))).await.is_err() || last {
                break;
            }
            continue;
        } else {
            let inflight = InFlight::enter(&shard);
            pending.set(pending.get() + 1);
            let pending_in_task = pending.clone();
            Box::pin(
                glommio::spawn_local(async move {
                    let _inflight = inflight;
                    let _pending = Decrement(pending_in_task);
                    run.answer(budget).await
                })
                .detach(),
            )
        };
        if queue.send(answer).await.is_err() {
            break;
        }
    }
    drop(queue);
    let _ = writer_task.await;
}

/// One parsed request and what answering it needs.
struct Request {
    shard: Rc<Shard>,
    ctx: RequestContext,
    api: ApiKey,
    body: Bytes,
    read_at: Instant,
    refused: Rc<Cell<bool>>,
}

impl Request {
    /// Runs the handler; `Err` when the connection must close without an answer.
    async fn answer<B>(self, budget: B) -> Result<Answered, ()> {
        let _budget = budget;
        let Request { shard, ctx, api, body, read_at, refused } = self;
        let api_key = api as i16;
        let started = Instant::now();
        let session = ctx.session.clone();
        let frame = handlers::dispatch(shard, api, body, ctx).await.map_err(|e| {
            tracing::warn!(peer = %session.peer, error = %e, "closing connection: request refused");
            refused.set(true);
        })?;
        let last = session.close_after_answer.get();
        Ok(Answered { frame, api_key, read_at, started, ready: Instant::now(), last })
    }
}

/// Reads a frame body of `length` bytes. Up to `FRAME_BODY_PREALLOC_BYTES_MAX`
/// is allocated at once (the shard's request-byte budget already covers it),
/// so that common produce requests are read without reallocating; larger
/// bodies grow as their bytes arrive, so that a length prefix alone never
/// makes the broker allocate much.
async fn read_body<R: futures::io::AsyncRead + Unpin>(reader: &mut R, length: usize) -> std::io::Result<BytesMut> {
    let mut body = BytesMut::with_capacity(length.min(FRAME_BODY_PREALLOC_BYTES_MAX));
    while body.len() < length {
        let at = body.len();
        let step = (length - at).min(CONNECTION_READ_CHUNK_BYTES.max(at));
        body.resize(at + step, 0);
        reader.read_exact(&mut body[at..]).await?;
    }
    Ok(body)
}

/// A request's answer (none for acks=0) and when it moved through each step.
struct Answered {
    frame: Option<ResponseFrame>,
    api_key: i16,
    /// The frame was read whole.
    read_at: Instant,
    /// The handler started.
    started: Instant,
    /// The handler answered.
    ready: Instant,
    /// The connection closes once this answer is written (a failed login).
    last: bool,
}

impl Answered {
    /// The steps' durations, given when the writer took the answer and when it was written.
    fn times(&self, picked: Instant, written: Instant) -> RequestTimes {
        RequestTimes {
            queue: self.started.saturating_duration_since(self.read_at),
            local: self.ready.saturating_duration_since(self.started),
            response_queue: picked.saturating_duration_since(self.ready),
            send: written.saturating_duration_since(picked),
        }
    }
}

/// Counts a request as in flight on its shard until dropped, so that a
/// stopping broker can let in-flight requests finish before it syncs and exits.
struct InFlight(Rc<Shard>);

impl InFlight {
    fn enter(shard: &Rc<Shard>) -> InFlight {
        shard.inflight_requests.set(shard.inflight_requests.get() + 1);
        InFlight(shard.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight_requests.set(self.0.inflight_requests.get() - 1);
    }
}

/// Reads a frame's 4-byte length. `Ok(false)` on a clean end of stream. A
/// read timeout with nothing read while answers are pending is not idleness:
/// the read is retried.
async fn read_prefix<R: futures::io::AsyncRead + Unpin>(
    reader: &mut R,
    prefix: &mut [u8; 4],
    pending: &Cell<usize>,
) -> std::io::Result<bool> {
    use futures::io::AsyncReadExt as _;
    let mut filled = 0;
    while filled < 4 {
        match reader.read(&mut prefix[filled..]).await {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut && filled == 0 && pending.get() > 0 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Decrements a counter when dropped.
struct Decrement(Rc<Cell<usize>>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

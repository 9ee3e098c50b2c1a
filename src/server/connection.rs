//! One client connection: read frames, run each request on its own task,
//! write responses in request order.
//!
//! The connection owns its read buffer; a frame's length is checked before
//! its body is allocated. At most `INFLIGHT_REQUESTS_PER_CONNECTION_MAX`
//! requests are in flight: reading pauses while the queue is full.

use std::cell::Cell;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use glommio::channels::local_channel;
use glommio::net::TcpStream;

use crate::constants::{
    CONNECTION_READ_CHUNK_BYTES, CONNECTION_WRITE_BUFFER_BYTES, INFLIGHT_REQUESTS_PER_CONNECTION_MAX,
};
use crate::handlers;
use crate::protocol::frame::{self, ResponseFrame};
use crate::shard::Shard;

/// Serves one connection until the client closes it, sends a bad frame, or the broker stops.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.split();
    let (queue, responses) = local_channel::new_bounded::<glommio::task::JoinHandle<Result<Option<ResponseFrame>, ()>>>(
        INFLIGHT_REQUESTS_PER_CONNECTION_MAX,
    );
    // Set when a request is refused: the connection ends after the answers before it.
    let refused = Rc::new(Cell::new(false));

    let refused_in_writer = refused.clone();
    let writer_task = glommio::spawn_local(async move {
        let mut out = BufWriter::with_capacity(CONNECTION_WRITE_BUFFER_BYTES, writer);
        while let Some(pending) = responses.recv().await {
            let frame = match pending.await {
                Some(Ok(Some(frame))) => frame,
                Some(Ok(None)) => continue,
                Some(Err(())) | None => {
                    refused_in_writer.set(true);
                    break;
                }
            };
            for chunk in &frame.chunks {
                if out.write_all(chunk).await.is_err() {
                    return;
                }
            }
            if out.flush().await.is_err() {
                return;
            }
        }
        let _ = out.flush().await;
        let _ = out.close().await;
    })
    .detach();

    let frame_bytes_max = shard.config.socket_request_max_bytes;
    while !refused.get() && !crate::server::STOPPING.load(std::sync::atomic::Ordering::Acquire) {
        let mut prefix = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut prefix).await {
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                tracing::debug!(%peer, error = %e, "connection read failed");
            }
            break;
        }
        let length = match frame::frame_length(prefix, frame_bytes_max) {
            Ok(length) => length,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame length");
                break;
            }
        };
        let body = match read_body(&mut reader, length).await {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: truncated frame");
                break;
            }
        };
        let request = match frame::parse_request(Bytes::from(body)) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad request header");
                break;
            }
        };
        let shard = shard.clone();
        let peer_for_task = peer.clone();
        let refused_in_task = refused.clone();
        let inflight = InFlight::enter(&shard);
        let handle = glommio::spawn_local(async move {
            let _inflight = inflight;
            handlers::dispatch(shard, request, &peer_for_task).await.map_err(|e| {
                tracing::warn!(peer = %peer_for_task, error = %e, "closing connection: request refused");
                refused_in_task.set(true);
            })
        })
        .detach();
        if queue.send(handle).await.is_err() {
            break;
        }
    }
    drop(queue);
    let _ = writer_task.await;
}

/// Reads a frame body of `length` bytes, growing the buffer as bytes arrive so
/// that a length prefix alone never makes the broker allocate.
async fn read_body<R: futures::io::AsyncRead + Unpin>(reader: &mut R, length: usize) -> std::io::Result<BytesMut> {
    let mut body = BytesMut::with_capacity(length.min(CONNECTION_READ_CHUNK_BYTES));
    while body.len() < length {
        let at = body.len();
        let step = (length - at).min(CONNECTION_READ_CHUNK_BYTES.max(at));
        body.resize(at + step, 0);
        reader.read_exact(&mut body[at..]).await?;
    }
    Ok(body)
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

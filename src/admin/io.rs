//! The HTTP serving the admin and schema registry listeners share: the
//! accept loop with its limits, each connection served by hyper (HTTP/1.1)
//! within its bounds, and glommio's TCP stream as hyper's IO (hyper 1.x
//! speaks its own `Read` and `Write` traits, glommio streams implement the
//! `futures` ones).

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::constants::{
    ADMIN_CONNECTIONS_MAX, ADMIN_CONNECTION_LIFETIME_MS, ADMIN_IO_TIMEOUT_MS, ADMIN_REQUEST_HEAD_BYTES_MAX,
};
use crate::shard::Shard;

/// How often an idle accept loop looks whether the broker is stopping.
const STOP_POLL_MS: u64 = 50;

/// Serves `listener` until the broker stops, answering each request with
/// `route`. At most [`ADMIN_CONNECTIONS_MAX`] connections are open (more
/// are closed on accept); each read and write is bounded by
/// [`ADMIN_IO_TIMEOUT_MS`], a request head by [`ADMIN_REQUEST_HEAD_BYTES_MAX`],
/// a connection's life by [`ADMIN_CONNECTION_LIFETIME_MS`]. `what` names
/// the listener in the log.
pub async fn serve<R, F>(
    shard: &Shard,
    listener: std::net::TcpListener,
    what: &'static str,
    route: R,
) -> std::io::Result<()>
where
    R: Fn(Request<Incoming>) -> F + Clone + 'static,
    F: Future<Output = Response<Full<Bytes>>> + 'static,
{
    let listener = {
        use std::os::fd::{FromRawFd, IntoRawFd};
        // SAFETY: the descriptor comes from a bound listener whose ownership moves here.
        unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
    };
    let open = Rc::new(Cell::new(0usize));
    let mut accept = Box::pin(listener.accept());
    loop {
        let tick = glommio::timer::sleep(Duration::from_millis(STOP_POLL_MS));
        futures::pin_mut!(tick);
        if let futures::future::Either::Left((accepted, _)) = futures::future::select(accept.as_mut(), tick).await {
            accept = Box::pin(listener.accept());
            match accepted {
                Ok(stream) if open.get() >= ADMIN_CONNECTIONS_MAX => {
                    tracing::warn!(max = ADMIN_CONNECTIONS_MAX, "{what} connections at their limit; closing one");
                    drop(stream);
                }
                Ok(stream) => {
                    open.set(open.get() + 1);
                    let (route, open) = (route.clone(), open.clone());
                    glommio::spawn_local(async move {
                        serve_connection(stream, what, route).await;
                        open.set(open.get() - 1);
                    })
                    .detach();
                }
                Err(e) => tracing::warn!(error = %e, "{what} accept failed"),
            }
        }
        if shard.lifecycle.stopping() {
            return Ok(());
        }
    }
}

async fn serve_connection<R, F>(stream: TcpStream, what: &'static str, route: R)
where
    R: Fn(Request<Incoming>) -> F + 'static,
    F: Future<Output = Response<Full<Bytes>>> + 'static,
{
    let io_timeout = Some(Duration::from_millis(ADMIN_IO_TIMEOUT_MS));
    let _ = stream.set_read_timeout(io_timeout);
    let _ = stream.set_write_timeout(io_timeout);
    let service = hyper::service::service_fn(move |request| {
        let answer = route(request);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(ADMIN_REQUEST_HEAD_BYTES_MAX)
        .max_headers(64)
        .serve_connection(HyperStream(stream), service);
    let lifetime = glommio::timer::sleep(Duration::from_millis(ADMIN_CONNECTION_LIFETIME_MS));
    futures::pin_mut!(connection, lifetime);
    if let futures::future::Either::Left((Err(e), _)) = futures::future::select(connection, lifetime).await {
        tracing::debug!(error = %e, "{what} connection ended");
    }
}

use futures::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// A glommio TCP stream that hyper can serve.
pub struct HyperStream(pub TcpStream);

impl hyper::rt::Read for HyperStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        // SAFETY: the slice is only written to (zeroed first, then filled by
        // the read); `advance` is called with exactly the bytes the read filled.
        let filled = unsafe {
            let unfilled: &mut [MaybeUninit<u8>] = buf.as_mut();
            for byte in unfilled.iter_mut() {
                byte.write(0);
            }
            let bytes = &mut *(unfilled as *mut [MaybeUninit<u8>] as *mut [u8]);
            match Pin::new(&mut self.0).poll_read(cx, bytes) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        };
        // SAFETY: the read initialised `filled` bytes at the cursor.
        unsafe { buf.advance(filled) };
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for HyperStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

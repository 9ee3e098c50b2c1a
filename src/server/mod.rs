//! The Kafka listener of one shard and its connections. Every shard binds the
//! same address (SO_REUSEPORT) and serves the connections the kernel gives it.

pub mod connection;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use glommio::net::TcpListener;

use crate::shard::Shard;

/// Set once the process is asked to stop; every shard's accept loop watches it.
pub static STOPPING: AtomicBool = AtomicBool::new(false);

/// Client connections open on the whole broker (all shards).
pub static CONNECTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a connection against `max.connections` until dropped.
pub struct ConnectionSlot;

impl ConnectionSlot {
    /// A slot, or `None` when the broker is at `max.connections`.
    pub fn take(max: usize) -> Option<ConnectionSlot> {
        let before = CONNECTIONS.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            CONNECTIONS.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnectionSlot)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        CONNECTIONS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How often an idle accept loop looks at [`STOPPING`].
const STOP_POLL_MS: u64 = 50;

/// Accepts connections until the broker stops.
pub async fn listen(shard: Rc<Shard>) -> std::io::Result<()> {
    let listener = TcpListener::bind(shard.config.listen).map_err(|e| std::io::Error::other(e.to_string()))?;
    tracing::info!(shard = shard.id, addr = %shard.config.listen, "listening");
    // One accept stays pending across the stop checks: dropping an accept the
    // kernel may already have completed would lose that connection.
    let mut accept = Box::pin(listener.accept());
    loop {
        let tick = glommio::timer::sleep(std::time::Duration::from_millis(STOP_POLL_MS));
        futures::pin_mut!(tick);
        match futures::future::select(accept.as_mut(), tick).await {
            futures::future::Either::Left((accepted, _)) => {
                accept = Box::pin(listener.accept());
                match accepted {
                    Ok(stream) => {
                        let Some(slot) = ConnectionSlot::take(shard.config.max_connections) else {
                            tracing::warn!(
                                max = shard.config.max_connections,
                                "max.connections reached; refusing a connection"
                            );
                            drop(stream);
                            continue;
                        };
                        let shard = shard.clone();
                        glommio::spawn_local(async move {
                            connection::serve(shard, stream).await;
                            drop(slot);
                        })
                        .detach();
                    }
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                }
            }
            futures::future::Either::Right(_) => {}
        }
        if STOPPING.load(Ordering::Acquire) {
            return Ok(());
        }
    }
}

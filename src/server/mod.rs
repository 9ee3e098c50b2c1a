//! The Kafka listener of one shard and its connections. Every shard binds the
//! same address (SO_REUSEPORT) and serves the connections the kernel gives it.

pub mod connection;

use std::rc::Rc;
use std::sync::Arc;

use glommio::net::TcpListener;

use crate::shard::lifecycle::Lifecycle;
use crate::shard::Shard;

/// Counts a connection against `max.connections` until dropped.
pub struct ConnectionSlot(Arc<Lifecycle>);

impl ConnectionSlot {
    /// A slot, or `None` when the broker is at `max.connections`.
    pub fn take(lifecycle: &Arc<Lifecycle>, max: usize) -> Option<ConnectionSlot> {
        lifecycle.take_connection(max).then(|| ConnectionSlot(lifecycle.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.release_connection();
    }
}

/// How often an idle accept loop looks whether the broker is stopping.
const STOP_POLL_MS: u64 = 50;

/// Accepts connections until the broker stops.
pub async fn listen(shard: Rc<Shard>) -> std::io::Result<()> {
    let listener = TcpListener::bind(shard.config.listen).map_err(|e| std::io::Error::other(e.to_string()))?;
    tracing::info!(shard = shard.id, addr = %shard.config.listen, "listening");
    shard.lifecycle.shard_listening(shard.config.listen);
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
                        let Some(slot) = ConnectionSlot::take(&shard.lifecycle, shard.config.max_connections) else {
                            tracing::warn!(
                                max = shard.config.max_connections,
                                "max.connections reached; refusing a connection"
                            );
                            shard.metrics.connections_refused.inc();
                            drop(stream);
                            continue;
                        };
                        let shard = shard.clone();
                        shard.metrics.connections_accepted.inc();
                        glommio::spawn_local(async move {
                            shard.metrics.connections_open.add(1);
                            connection::serve(shard.clone(), stream).await;
                            shard.metrics.connections_open.add(-1);
                            drop(slot);
                        })
                        .detach();
                    }
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                }
            }
            futures::future::Either::Right(_) => {}
        }
        if shard.lifecycle.stopping() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    /// Each poll of a pending accept used to keep one more reference to the
    /// polling task (vendor patch 0005); past 32,767 the count overflowed and
    /// the shard panicked, so a listener whose loop wakes every 50 ms died
    /// about 14 minutes after start.
    #[test]
    fn a_pending_accept_polled_again_and_again_keeps_one_reference() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let listener = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let mut accept = Box::pin(listener.accept());
                for _ in 0..40_000 {
                    assert!(futures::poll!(accept.as_mut()).is_pending());
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
}

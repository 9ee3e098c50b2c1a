//! The Kafka listeners of one shard and their connections. Every shard binds
//! each listener's address (SO_REUSEPORT) and serves the connections the
//! kernel gives it.

pub mod connection;
pub mod listener;
pub mod session;
pub mod turns;

use std::rc::Rc;
use std::sync::Arc;

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

/// Serves every listener until the broker stops.
pub async fn listen(shard: Rc<Shard>) -> Result<(), String> {
    let runtimes = listener::runtimes(&shard.config.listeners)?;
    // Every listener is bound before the shard counts as listening, so the
    // broker is ready only once each shard takes connections on each listener.
    let mut bound = Vec::with_capacity(runtimes.len());
    for runtime in runtimes {
        let socket = listener::bind(&shard, &runtime)
            .map_err(|e| format!("listener {} {}: {e}", runtime.config.name, runtime.config.bind))?;
        bound.push((runtime, socket));
    }
    if let Some((runtime, _)) = bound.first() {
        shard.lifecycle.shard_listening(runtime.config.bind);
    }
    let loops = bound.into_iter().map(|(runtime, socket)| {
        let shard = shard.clone();
        async move { listener::serve(shard, runtime, socket).await }
    });
    futures::future::join_all(loops).await;
    Ok(())
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

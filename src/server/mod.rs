//! The Kafka listeners of one shard and their connections. Every shard binds
//! each listener's address (SO_REUSEPORT) and serves the connections the
//! kernel gives it.

pub mod connection;
pub mod listener;
pub mod session;

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
    let loops = runtimes.into_iter().map(|runtime| {
        let shard = shard.clone();
        let name = runtime.config.name.clone();
        let address = runtime.config.bind;
        async move { listener::listen(shard, runtime).await.map_err(|e| format!("listener {name} {address}: {e}")) }
    });
    futures::future::try_join_all(loops).await.map(|_| ())
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

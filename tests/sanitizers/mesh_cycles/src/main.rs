//! Starts and stops a shard mesh the way `sluice serve` does (one executor per
//! shard, each cloning the `MeshBuilder` in its start closure and joining the
//! full mesh), `cycles` times, and checks every shard can reach every other.
//! Run under ThreadSanitizer by `tests/sanitizers/run.sh`: glommio 0.9.0's
//! `MeshBuilder` shared a non-atomic reference count across these threads.
//!
//!     cargo run --release -p shard-mesh-cycles -- [cycles] [shards]

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

/// Small rings: this exercises start-up and shutdown, not I/O.
const IO_MEMORY_BYTES_PER_SHARD: usize = 256 * 1024;
const MESH_CHANNEL_DEPTH: usize = 16;

fn main() {
    let mut args = std::env::args().skip(1);
    let cycles: usize = args.next().map(|a| a.parse().expect("cycles")).unwrap_or(2000);
    let shards: usize = args.next().map(|a| a.parse().expect("shards")).unwrap_or(8);
    for cycle in 0..cycles {
        let mesh = MeshBuilder::<usize, _>::full(shards, MESH_CHANNEL_DEPTH);
        let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(shards))
            .io_memory(IO_MEMORY_BYTES_PER_SHARD)
            .on_all_shards(move || {
                let mesh = mesh.clone();
                async move {
                    let (senders, receivers) = mesh.join().await.expect("join the mesh");
                    let me = senders.peer_id();
                    for peer in 0..senders.nr_consumers() {
                        if peer != me {
                            senders.send_to(peer, me).await.expect("send");
                        }
                    }
                    let mut heard = 0;
                    for peer in 0..receivers.nr_producers() {
                        if peer != me {
                            let from = receivers.recv_from(peer).await.expect("receive").expect("a message");
                            assert_eq!(from, peer);
                            heard += 1;
                        }
                    }
                    heard
                }
            })
            .expect("start executors");
        for heard in handles.join_all() {
            assert_eq!(heard.expect("executor finished"), shards - 1, "cycle {cycle}");
        }
        if (cycle + 1) % 500 == 0 {
            eprintln!("shard_mesh_cycles: {} cycles of {shards} shards", cycle + 1);
        }
    }
    println!("shard_mesh_cycles: {cycles} cycles of {shards} shards ok");
}

//! A fault-injecting network between a cluster's brokers: one TCP proxy in
//! front of each node's controller listener, the address the other nodes
//! know it by (`controller.quorum.voters`), which carries the metadata
//! quorum's traffic and the followers' fetches. Each connection is told
//! apart by who opened it: a quorum connection opens with `SLQR` and the
//! sender's node id; a follower's opens with `SLRF` and the partition it
//! follows, and its fetches name the follower in their client id
//! (`replica-<id>`). A cut between two nodes closes their connections both
//! ways and refuses new ones until it heals; clients' connections to the
//! brokers are not proxied, so a broker cut off from the others still
//! answers clients, as in a real network partition.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a forwarding thread looks at the cuts.
const POLL: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Shared {
    /// (from, to): connections opened by `from` to `to` are cut.
    cuts: Mutex<HashSet<(i32, i32)>>,
    /// Forwarding threads running per (from, to).
    open: Mutex<std::collections::HashMap<(i32, i32), usize>>,
    stopped: AtomicBool,
}

impl Shared {
    fn cut(&self, from: Option<i32>, to: i32) -> bool {
        self.stopped.load(Ordering::SeqCst) || from.is_some_and(|from| self.cuts.lock().unwrap().contains(&(from, to)))
    }
}

/// The proxies of one cluster; dropping it stops them.
pub struct Network {
    shared: Arc<Shared>,
    listeners: Vec<u16>,
}

impl Network {
    /// One proxy per `(node, listen port, upstream port)`.
    pub fn start(links: &[(i32, u16, u16)]) -> Network {
        let shared = Arc::new(Shared::default());
        for &(node, listen, upstream) in links {
            let listener = TcpListener::bind(("127.0.0.1", listen)).expect("bind the proxy");
            let shared = shared.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if shared.stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let shared = shared.clone();
                    std::thread::spawn(move || forward(conn, node, upstream, shared));
                }
            });
        }
        Network { shared, listeners: links.iter().map(|l| l.1).collect() }
    }

    /// Cuts `node` off from each of `others`, both ways; returns once no
    /// connection between them forwards anything any more.
    pub fn isolate(&self, node: i32, others: &[i32]) {
        let pairs: Vec<(i32, i32)> = others.iter().flat_map(|&o| [(node, o), (o, node)]).collect();
        self.shared.cuts.lock().unwrap().extend(pairs.iter().copied());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pairs.iter().any(|p| self.shared.open.lock().unwrap().get(p).is_some_and(|n| *n > 0)) {
            assert!(std::time::Instant::now() < deadline, "connections across the cut did not close");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every node reaches every other again.
    pub fn heal(&self) {
        self.shared.cuts.lock().unwrap().clear();
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accepting threads so they see it.
        for port in &self.listeners {
            let _ = TcpStream::connect(("127.0.0.1", *port));
        }
    }
}

/// Who opened `conn`, from its first bytes (which it returns, to pass on).
fn identify(conn: &mut TcpStream) -> std::io::Result<(Option<i32>, Vec<u8>)> {
    let mut head = [0u8; 4];
    conn.read_exact(&mut head)?;
    let mut seen = head.to_vec();
    if &head == b"SLQR" {
        let mut id = [0u8; 4];
        conn.read_exact(&mut id)?;
        seen.extend_from_slice(&id);
        return Ok((Some(i32::from_be_bytes(id)), seen));
    }
    if &head == b"SLRF" {
        // A follower's opening names the partition it fetches (a topic name
        // of u16 length, then the partition); its Fetch requests follow.
        let mut length = [0u8; 2];
        conn.read_exact(&mut length)?;
        let mut partition = vec![0u8; u16::from_be_bytes(length) as usize + 4];
        conn.read_exact(&mut partition)?;
        let mut size = [0u8; 4];
        conn.read_exact(&mut size)?;
        seen.extend_from_slice(&length);
        seen.extend_from_slice(&partition);
        seen.extend_from_slice(&size);
    }
    // A Kafka request: api key, version, correlation id, then the client id.
    let mut fixed = [0u8; 10];
    conn.read_exact(&mut fixed)?;
    seen.extend_from_slice(&fixed);
    let length = i16::from_be_bytes([fixed[8], fixed[9]]);
    if length <= 0 {
        return Ok((None, seen));
    }
    let mut client_id = vec![0u8; length as usize];
    conn.read_exact(&mut client_id)?;
    seen.extend_from_slice(&client_id);
    let from = std::str::from_utf8(&client_id).ok().and_then(|c| c.strip_prefix("replica-")?.parse().ok());
    Ok((from, seen))
}

/// Counts a forwarding connection between two nodes while it lives.
struct Open {
    link: Option<(i32, i32)>,
    shared: Arc<Shared>,
}

impl Open {
    fn new(link: Option<(i32, i32)>, shared: Arc<Shared>) -> Open {
        if let Some(link) = link {
            *shared.open.lock().unwrap().entry(link).or_default() += 1;
        }
        Open { link, shared }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(link) = self.link {
            *self.shared.open.lock().unwrap().entry(link).or_default() -= 1;
        }
    }
}

fn forward(mut conn: TcpStream, to: i32, upstream: u16, shared: Arc<Shared>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok((from, seen)) = identify(&mut conn) else { return };
    // Counted before the cut is looked at, so that a cut waits for it.
    let _open = Open::new(from.map(|from| (from, to)), shared.clone());
    if shared.cut(from, to) {
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
    let _ = server.set_nodelay(true);
    let _ = conn.set_nodelay(true);
    if shared.cut(from, to) || server.write_all(&seen).is_err() {
        return;
    }
    let (Ok(conn_back), Ok(server_back)) = (conn.try_clone(), server.try_clone()) else { return };
    let back = {
        let shared = shared.clone();
        std::thread::spawn(move || pump(server_back, conn_back, from, to, &shared))
    };
    pump(conn, server, from, to, &shared);
    let _ = back.join();
}

/// Copies `source` to `sink` until either closes or the link is cut; then closes both.
fn pump(mut source: TcpStream, mut sink: TcpStream, from: Option<i32>, to: i32, shared: &Shared) {
    let _ = source.set_read_timeout(Some(POLL));
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if shared.cut(from, to) {
            break;
        }
        match source.read(&mut buffer) {
            Ok(0) => break,
            // Nothing read goes on once the link is cut.
            Ok(_) if shared.cut(from, to) => break,
            Ok(n) => {
                if sink.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = source.shutdown(Shutdown::Both);
    let _ = sink.shutdown(Shutdown::Both);
}

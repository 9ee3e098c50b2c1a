//! How nodes talk to the quorum, on the voters' controller listeners.
//!
//! A quorum connection opens with [`MAGIC`] and the sender's node id
//! (`i32`, big-endian), then carries frames `[u32 length][u8 kind][payload]`
//! (length counts the kind byte). A connection that does not open with the
//! magic is a Kafka client of the controller listener (the length prefix of
//! a Kafka request is never `SLQR`: it would be over a gigabyte) and is
//! served as one, the four bytes read handed back first.
//!
//! Voters keep one connection per direction and peer. Their messages are
//! fire and forget: a full queue or a broken connection drops them, and
//! Raft sends again what a peer did not acknowledge.
//!
//! A broker that is not a voter (an observer) opens one connection to a
//! voter, the leader once it knows it, and asks on it for the committed
//! records ([`Kind::Fetch`], answered by one [`Kind::Records`]); it sends its
//! heartbeats and its proposals there too.

use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;

use crate::constants::{
    QUORUM_CONNECT_TIMEOUT_MS, QUORUM_FRAME_BYTES_MAX, QUORUM_PEER_QUEUE_MAX, QUORUM_RECONNECT_BACKOFF_MS,
};
use crate::shard::Shard;

/// The first bytes of a quorum connection.
pub const MAGIC: [u8; 4] = *b"SLQR";

/// The first bytes of a follower's replica-fetch connection: then
/// `[u16 length][topic][i32 partition]`, and from there on Kafka requests.
/// The broker that accepts it hands it to the shard that owns the
/// partition, so that the follower's core fetches from the leader's core
/// with no hop between shards. Like [`MAGIC`], never the start of a Kafka
/// request (its length prefix would be over a gigabyte).
pub const REPLICA_MAGIC: [u8; 4] = *b"SLRF";

/// A replica-fetch connection's opening for `topic`'s `partition`.
pub fn encode_replica_hello(topic: &str, partition: i32) -> Vec<u8> {
    let mut hello = REPLICA_MAGIC.to_vec();
    hello.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    hello.extend_from_slice(topic.as_bytes());
    hello.extend_from_slice(&partition.to_be_bytes());
    hello
}

/// Reads the rest of a replica-fetch opening (after [`REPLICA_MAGIC`]):
/// the topic (a valid topic name's length at most) and the partition.
pub async fn read_replica_hello<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<(String, i32)> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).await?;
    let length = u16::from_be_bytes(length) as usize;
    if length == 0 || length > crate::constants::TOPIC_NAME_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("replica hello names a topic of {length} bytes"),
        ));
    }
    let mut topic = vec![0u8; length];
    stream.read_exact(&mut topic).await?;
    let topic = String::from_utf8(topic).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "topic not UTF-8"))?;
    let mut partition = [0u8; 4];
    stream.read_exact(&mut partition).await?;
    Ok((topic, i32::from_be_bytes(partition)))
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A Raft message (raft-rs's protobuf encoding).
    Raft = 1,
    /// A broker's heartbeat to the quorum's leader: its incarnation.
    Heartbeat = 2,
    /// An observer asks for the committed records from a log index (`u64`).
    Fetch = 3,
    /// A voter's answer to [`Kind::Fetch`]: [`Records`].
    Records = 4,
    /// An observer's record for the quorum to commit (the record's bytes).
    Propose = 5,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Raft),
            2 => Some(Kind::Heartbeat),
            3 => Some(Kind::Fetch),
            4 => Some(Kind::Records),
            5 => Some(Kind::Propose),
            _ => None,
        }
    }
}

/// A voter's answer to an observer's fetch: what it knows of the quorum and
/// the committed records from the index asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Records {
    /// The quorum's leader as the voter knows it.
    pub leader: Option<i32>,
    pub term: u64,
    /// The voter's commit index.
    pub committed: u64,
    /// The index to ask from next.
    pub next: u64,
    /// (log index, record bytes), in log order.
    pub records: Vec<(u64, Vec<u8>)>,
}

impl Records {
    /// `[i32 leader (-1: none)][u64 term][u64 committed][u64 next]` then per
    /// record `[u64 index][u32 length][bytes]`.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.records.iter().map(|(_, r)| 12 + r.len()).sum();
        let mut out = Vec::with_capacity(28 + size);
        out.extend_from_slice(&self.leader.unwrap_or(-1).to_be_bytes());
        out.extend_from_slice(&self.term.to_be_bytes());
        out.extend_from_slice(&self.committed.to_be_bytes());
        out.extend_from_slice(&self.next.to_be_bytes());
        for (index, record) in &self.records {
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&(record.len() as u32).to_be_bytes());
            out.extend_from_slice(record);
        }
        out
    }

    /// The inverse of [`Records::encode`]; anything short or left over is an error.
    pub fn decode(mut bytes: &[u8]) -> io::Result<Records> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> io::Result<&'a [u8]> {
            if bytes.len() < n {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "quorum records frame cut short"));
            }
            let (head, rest) = bytes.split_at(n);
            *bytes = rest;
            Ok(head)
        }
        let u64_at = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        let leader = i32::from_be_bytes(take(&mut bytes, 4)?.try_into().unwrap_or_default());
        let term = u64_at(take(&mut bytes, 8)?);
        let committed = u64_at(take(&mut bytes, 8)?);
        let next = u64_at(take(&mut bytes, 8)?);
        let mut records = Vec::new();
        while !bytes.is_empty() {
            let index = u64_at(take(&mut bytes, 8)?);
            let len = u32::from_be_bytes(take(&mut bytes, 4)?.try_into().unwrap_or_default()) as usize;
            records.push((index, take(&mut bytes, len)?.to_vec()));
        }
        Ok(Records { leader: (leader >= 0).then_some(leader), term, committed, next, records })
    }
}

/// A frame from a peer.
#[derive(Debug)]
pub struct Inbound {
    pub from: i32,
    pub kind: Kind,
    pub payload: Vec<u8>,
}

/// Reads one frame; `Ok(None)` at a clean end of the stream.
pub async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<(Kind, Vec<u8>)>> {
    let mut head = [0u8; 4];
    match stream.read_exact(&mut head).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(head) as usize;
    if len == 0 || len > QUORUM_FRAME_BYTES_MAX + 1 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("quorum frame of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    let kind = Kind::from_byte(body[0])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unknown quorum frame kind {}", body[0])))?;
    body.remove(0);
    Ok(Some((kind, body)))
}

/// One frame as sent.
pub fn encode_frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
    frame.push(kind as u8);
    frame.extend_from_slice(payload);
    frame
}

/// The sending side to one peer: a bounded queue and the task that drains it.
pub struct Peer {
    queue: LocalSender<Vec<u8>>,
}

impl Peer {
    /// Starts the task sending to voter `to` at `host:port` as node `me`.
    pub fn start(shard: Rc<Shard>, me: i32, to: i32, host: String, port: u16) -> Peer {
        let (queue, frames) = local_channel::new_bounded(QUORUM_PEER_QUEUE_MAX);
        glommio::spawn_local(async move { send_loop(shard, me, to, host, port, frames).await }).detach();
        Peer { queue }
    }

    /// Queues a frame; dropped when the queue is full.
    pub fn send(&self, kind: Kind, payload: &[u8]) {
        if self.queue.try_send(encode_frame(kind, payload)).is_err() {
            tracing::debug!("quorum peer queue full; message dropped");
        }
    }
}

pub async fn connect(me: i32, host: &str, port: u16) -> io::Result<TcpStream> {
    let address = (host, port)
        .to_socket_addrs_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}:{port} resolves to nothing")))?;
    let mut stream = TcpStream::connect_timeout(address, Duration::from_millis(QUORUM_CONNECT_TIMEOUT_MS))
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let mut hello = MAGIC.to_vec();
    hello.extend_from_slice(&me.to_be_bytes());
    stream.write_all(&hello).await?;
    Ok(stream)
}

trait FirstAddress {
    fn to_socket_addrs_first(&self) -> Option<std::net::SocketAddr>;
}

impl FirstAddress for (&str, u16) {
    fn to_socket_addrs_first(&self) -> Option<std::net::SocketAddr> {
        use std::net::ToSocketAddrs;
        self.to_socket_addrs().ok()?.next()
    }
}

async fn send_loop(shard: Rc<Shard>, me: i32, to: i32, host: String, port: u16, frames: LocalReceiver<Vec<u8>>) {
    let mut stream: Option<TcpStream> = None;
    while let Some(frame) = frames.recv().await {
        // A stopping node talks to the quorum until its controlled shutdown is over.
        if shard.lifecycle.stopping() && super::left() {
            return;
        }
        if stream.is_none() {
            match connect(me, &host, port).await {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    tracing::debug!(peer = to, error = %e, "cannot reach quorum peer");
                    // What waited is stale by the time the peer is back: Raft sends afresh.
                    while let Some(Some(_)) = futures::FutureExt::now_or_never(frames.recv()) {}
                    glommio::timer::sleep(Duration::from_millis(QUORUM_RECONNECT_BACKOFF_MS)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        if let Err(e) = s.write_all(&frame).await {
            tracing::debug!(peer = to, error = %e, "quorum connection broke");
            stream = None;
        }
    }
}

/// A stream whose first bytes were already read: they are read again first.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed { prefix, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.at < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.at);
            buf[..n].copy_from_slice(&self.prefix[self.at..self.at + n]);
            self.at += n;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        futures::executor::block_on(async {
            let mut bytes = encode_frame(Kind::Raft, b"message");
            bytes.extend(encode_frame(Kind::Heartbeat, b""));
            let mut reader = futures::io::Cursor::new(bytes);
            assert_eq!(read_frame(&mut reader).await.unwrap(), Some((Kind::Raft, b"message".to_vec())));
            assert_eq!(read_frame(&mut reader).await.unwrap(), Some((Kind::Heartbeat, Vec::new())));
            assert_eq!(read_frame(&mut reader).await.unwrap(), None);
            let mut huge = futures::io::Cursor::new(u32::MAX.to_be_bytes().to_vec());
            assert!(read_frame(&mut huge).await.is_err(), "a huge length is refused before allocating");
            let mut unknown = futures::io::Cursor::new(vec![0, 0, 0, 1, 9]);
            assert!(read_frame(&mut unknown).await.is_err());
            let mut empty = futures::io::Cursor::new(vec![0, 0, 0, 0]);
            assert!(read_frame(&mut empty).await.is_err());
        });
    }

    #[test]
    fn records_round_trip_and_short_ones_are_refused() {
        let records = Records {
            leader: Some(2),
            term: 7,
            committed: 40,
            next: 41,
            records: vec![(38, b"one".to_vec()), (40, Vec::new())],
        };
        let bytes = records.encode();
        assert_eq!(Records::decode(&bytes).unwrap(), records);
        let none = Records { leader: None, ..Records::default() };
        assert_eq!(Records::decode(&none.encode()).unwrap(), none);
        for cut in [0, 10, 27, 30, bytes.len() - 1] {
            assert!(Records::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut lying = Records { records: vec![(1, b"x".to_vec())], ..Records::default() }.encode();
        lying[28 + 8..28 + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Records::decode(&lying).is_err(), "a length past the frame is refused");
    }

    #[test]
    fn a_kafka_request_never_opens_like_a_quorum_connection() {
        assert!(u32::from_be_bytes(MAGIC) as usize > crate::constants::REQUEST_BYTES_PER_SHARD_MAX);
        assert!(u32::from_be_bytes(REPLICA_MAGIC) as usize > crate::constants::REQUEST_BYTES_PER_SHARD_MAX);
    }

    #[test]
    fn a_replica_hello_round_trips_and_a_bad_one_is_refused() {
        futures::executor::block_on(async {
            let hello = encode_replica_hello("orders", 7);
            assert_eq!(&hello[..4], &REPLICA_MAGIC);
            let mut reader = futures::io::Cursor::new(hello[4..].to_vec());
            assert_eq!(read_replica_hello(&mut reader).await.unwrap(), ("orders".to_string(), 7));
            let mut empty = futures::io::Cursor::new(vec![0, 0]);
            assert!(read_replica_hello(&mut empty).await.is_err());
            let mut long = futures::io::Cursor::new(vec![0xff, 0xff]);
            assert!(read_replica_hello(&mut long).await.is_err(), "refused before allocating");
            let mut cut = futures::io::Cursor::new(hello[4..hello.len() - 1].to_vec());
            assert!(read_replica_hello(&mut cut).await.is_err());
        });
    }

    #[test]
    fn a_prefixed_stream_reads_its_prefix_first() {
        futures::executor::block_on(async {
            let mut s = Prefixed::new(b"ab".to_vec(), futures::io::Cursor::new(b"cd".to_vec()));
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, b"abcd");
        });
    }
}

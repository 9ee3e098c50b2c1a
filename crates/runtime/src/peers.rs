//! Kafka requests one broker of a cluster sends another, as Kafka's brokers
//! do, to the listener the other broker serves brokers on (a voter's
//! CONTROLLER listener, which serves Kafka requests too; a broker alone's
//! `inter.broker.listener.name`): a follower's replica fetches, a transaction coordinator's
//! WriteTxnMarkers to the leaders of its transaction's partitions, and a
//! partition leader's AddPartitionsToTxn to a transaction's coordinator.
//! The client id is `replica-<node id>`, so a connection says which broker opened it.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{
    ApiKey, ProducerId, RequestHeader, ResponseHeader, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::shard::Shard;
use sluice_core::constants::{PEER_CALL_TIMEOUT_MS, PEER_RESPONSE_BYTES_MAX, QUORUM_CONNECT_TIMEOUT_MS};
use sluice_domain::txn::coordinator::COORDINATOR_EPOCH;
use sluice_protocol::{ResponseError, TopicPartition};

/// Connects to `broker` where it serves other brokers: the listener its
/// registration names (a voter's CONTROLLER listener, a broker alone's
/// `inter.broker.listener.name`), or a voter's quorum address until its
/// registration is known.
pub async fn connect(shard: &Shard, broker: i32) -> std::io::Result<TcpStream> {
    let config = shard.config.cluster.as_ref().ok_or_else(|| std::io::Error::other("not a cluster node"))?;
    let registered = shard.cluster().and_then(|view| {
        let b = view.brokers.iter().find(|b| b.id == broker)?;
        let name = b.inter_broker.as_deref().unwrap_or(&config.controller_listener);
        b.endpoints.iter().find(|e| e.name == name).map(|e| (e.host.clone(), e.port))
    });
    let (host, port) = match registered {
        Some(found) => found,
        None => {
            let voter = config.voters.iter().find(|v| v.id == broker).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("broker {broker} is not registered"))
            })?;
            (voter.host.clone(), voter.port)
        }
    };
    let address = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let stream = TcpStream::connect_timeout(address, Duration::from_millis(QUORUM_CONNECT_TIMEOUT_MS))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.set_nodelay(true).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(stream)
}

/// One request and its answer on `stream`, at `version`; an answer longer
/// than `response_bytes_max`, or not for this request, is an error.
pub async fn exchange<Req: Encodable, Resp: Decodable>(
    shard: &Shard,
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Req,
    response_bytes_max: usize,
) -> std::io::Result<Resp> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(format!("replica-{}", shard.config.node_id))));
    let mut body = BytesMut::new();
    header.encode(&mut body, api.request_header_version(version)).map_err(|e| std::io::Error::other(e.to_string()))?;
    request.encode(&mut body, version).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut frame = BytesMut::with_capacity(4 + body.len());
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    stream.write_all(&frame).await?;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await?;
    let length = i32::from_be_bytes(length);
    if length < 0 || length as usize > response_bytes_max {
        return Err(std::io::Error::other(format!("{api:?} response of {length} bytes")));
    }
    let mut bytes = vec![0u8; length as usize];
    stream.read_exact(&mut bytes).await?;
    let mut bytes = Bytes::from(bytes);
    let header = ResponseHeader::decode(&mut bytes, api.response_header_version(version))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let response = Resp::decode(&mut bytes, version).map_err(|e| std::io::Error::other(e.to_string()))?;
    if header.correlation_id != correlation_id || bytes.has_remaining() {
        return Err(std::io::Error::other(format!("{api:?} response out of step")));
    }
    Ok(response)
}

/// Sends `request` to `broker` on a connection of its own and returns the
/// answer, or why there is none, within `PEER_CALL_TIMEOUT_MS`.
pub async fn call<Req: Encodable, Resp: Decodable>(
    shard: &Shard,
    broker: i32,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> Result<Resp, String> {
    let exchange = async {
        let mut stream = connect(shard, broker).await?;
        let answer = exchange(shard, &mut stream, api, version, 1, request, PEER_RESPONSE_BYTES_MAX).await;
        let _ = stream.close().await;
        answer
    };
    match glommio::timer::timeout(Duration::from_millis(PEER_CALL_TIMEOUT_MS), async { Ok(exchange.await) }).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("{api:?} to broker {broker}: {e}")),
        Err(_) => Err(format!("{api:?} to broker {broker}: no answer within {PEER_CALL_TIMEOUT_MS} ms")),
    }
}

/// WriteTxnMarkers' version brokers send.
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

/// Producer errors a marker may get where the producer has moved on (a newer
/// epoch, or no state left): nothing of this transaction is open there.
const MOVED_ON: [ResponseError; 4] = [
    ResponseError::InvalidProducerEpoch,
    ResponseError::OutOfOrderSequenceNumber,
    ResponseError::UnknownProducerId,
    ResponseError::TransactionCoordinatorFenced,
];

/// Has `broker` write the commit or abort markers of a producer's
/// transaction into `partitions`, which it leads (WriteTxnMarkers); a
/// partition of `__consumer_offsets` ends the transaction's offsets of the
/// groups on it. Ok once every marker is written.
pub async fn write_markers(
    shard: &Shard,
    broker: i32,
    partitions: &[TopicPartition],
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> Result<(), String> {
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for p in partitions {
        let name = TopicName(StrBytes::from_string(p.topic.clone()));
        match topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.partition_indexes.push(p.partition),
            None => {
                topics.push(WritableTxnMarkerTopic::default().with_name(name).with_partition_indexes(vec![p.partition]))
            }
        }
    }
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_transaction_result(commit)
        .with_coordinator_epoch(COORDINATOR_EPOCH)
        .with_topics(topics);
    let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let response: WriteTxnMarkersResponse =
        call(shard, broker, ApiKey::WriteTxnMarkers, WRITE_TXN_MARKERS_VERSION, &request).await?;
    let mut written = 0;
    for topic in response.markers.iter().flat_map(|m| &m.topics) {
        for p in &topic.partitions {
            match ResponseError::try_from_code(p.error_code) {
                _ if p.error_code == 0 => written += 1,
                Some(e) if MOVED_ON.contains(&e) => written += 1,
                _ => {
                    let (name, partition, code) = (&topic.name.0, p.partition_index, p.error_code);
                    return Err(format!("marker for {name}-{partition} at broker {broker}: error {code}"));
                }
            }
        }
    }
    if written != partitions.len() {
        return Err(format!("broker {broker} answered {written} of {} markers", partitions.len()));
    }
    Ok(())
}

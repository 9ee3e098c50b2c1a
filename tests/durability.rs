//! What the broker does when the disk lets it down: corruption in the middle
//! of a log is reported and served around, not truncated away; a full disk
//! (holding the broker's log too) refuses writes with KAFKA_STORAGE_ERROR and
//! offset commits with COORDINATOR_NOT_AVAILABLE, and keeps serving reads.

use crate::common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use common::{create_topic, fetch_request, record_batch, Broker, Raw, SmallDisk};
use kafka_protocol::messages::{ApiKey, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

const KAFKA_STORAGE_ERROR: i16 = 56;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Commits `offset` for partition 0 of `topic` outside group management; the partition's error code.
fn commit_offset(raw: &mut Raw, group: &str, topic: &str, offset: i64) -> i16 {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetCommitResponse};
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(StrBytes::from_string("m".repeat(200))))])]);
    let response: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &request);
    response.topics[0].partitions[0].error_code
}

/// The group's committed offset for partition 0 of `topic`: (error code, offset).
fn fetch_committed(raw: &mut Raw, group: &str, topic: &str) -> (i16, i64) {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_indexes(vec![0])]));
    let response: OffsetFetchResponse = raw.call(ApiKey::OffsetFetch, 7, &request);
    if response.error_code != 0 {
        return (response.error_code, -1);
    }
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

/// A fetch of partition 0 of `topic` from `offset`: (error code, bytes of records).
fn fetch(raw: &mut Raw, topic: &str, offset: i64) -> (i16, usize) {
    let response: FetchResponse = raw.call(ApiKey::Fetch, 11, &fetch_request(topic, &[(0, offset)], 10));
    let p = &response.responses[0].partitions[0];
    (p.error_code, p.records.as_ref().map(|r| r.len()).unwrap_or(0))
}

fn flip_byte(path: &Path, at: u64) {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0xff]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_log_corruption_is_reported_and_the_rest_keeps_serving() {
    let broker = Broker::start("corruption", 2, &[]);
    create_topic(&broker.bootstrap(), "damaged", 1, &[]).await;
    create_topic(&broker.bootstrap(), "healthy", 1, &[]).await;
    let dir = tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        for i in 0..100 {
            let value = format!("record-{i:04}");
            assert_eq!(raw.produce("damaged", 0, record_batch(&[value.as_bytes()], 1)).0, 0);
            assert_eq!(raw.produce("healthy", 0, record_batch(&[value.as_bytes()], 1)).0, 0);
        }
        broker.kill()
    });
    // Damage batch 50 of 100 (one record each, all the same size).
    let log = dir.join("damaged-0").join("00000000000000000000.log");
    let batch_bytes = record_batch(&[b"record-0000"], 1).len() as u64;
    flip_byte(&log, 50 * batch_bytes + 65);
    let length_before = std::fs::metadata(&log).unwrap().len();

    let broker = Broker::start_in(dir, 2, &[]);
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        assert_eq!(fetch(&mut raw, "damaged", 0).0, 0, "data before the damage is served");
        assert_eq!(fetch(&mut raw, "damaged", 49).0, 0);
        assert_eq!(fetch(&mut raw, "damaged", 50).0, KAFKA_STORAGE_ERROR, "reads reaching the damage fail");
        assert_eq!(raw.produce("damaged", 0, record_batch(&[b"more"], 1)).0, KAFKA_STORAGE_ERROR);
        // The rest of the broker is unaffected.
        let (code, bytes) = fetch(&mut raw, "healthy", 0);
        assert_eq!(code, 0);
        assert!(bytes > 0);
        assert_eq!(raw.produce("healthy", 0, record_batch(&[b"more"], 1)), (0, 100));
    });
    assert_eq!(
        std::fs::metadata(broker.data_dir.join("damaged-0/00000000000000000000.log")).unwrap().len(),
        length_before
    );
    assert!(broker.log().contains("corrupt record batch in the middle of the log"));
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_writes_and_keeps_serving_reads() {
    let disk = SmallDisk::new("full-disk", 24);
    let data = disk.mount.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The broker's own log is on the full disk too, as it often is in production.
    let broker = Broker::start_in(data, 1, &[]);
    create_topic(&broker.bootstrap(), "filling", 1, &[]).await;
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let value = vec![b'f'; 60_000];
        let mut acked = 0i64;
        let mut refused = None;
        for _ in 0..1000 {
            match raw.produce("filling", 0, record_batch(&[&value, &value, &value], 1)) {
                (0, offset) => {
                    assert_eq!(offset, acked);
                    acked += 3;
                }
                (code, _) => {
                    refused = Some(code);
                    break;
                }
            }
        }
        assert_eq!(refused, Some(KAFKA_STORAGE_ERROR), "a full disk refuses writes");
        assert!(acked > 0);
        // Acknowledged data is still served, and the broker still answers.
        let (code, bytes) = fetch(&mut raw, "filling", 0);
        assert_eq!(code, 0);
        assert!(bytes > 0);
        assert_eq!(fetch(&mut raw, "filling", acked - 1).0, 0);
        assert_eq!(raw.produce("filling", 0, record_batch(&[b"x"], 1)).0, KAFKA_STORAGE_ERROR, "the failure is final");

        // Offset commits fill the offsets journal until one fails; from then on
        // the group's offsets are not served, so the failed commit is never seen.
        let mut committed = None;
        let mut failed_at = None;
        for offset in 0..100_000i64 {
            match commit_offset(&mut raw, "full-disk-group", "filling", offset) {
                0 => committed = Some(offset),
                code => {
                    failed_at = Some((offset, code));
                    break;
                }
            }
        }
        let (failed_offset, code) = failed_at.expect("a commit on a full disk fails");
        assert_eq!(code, COORDINATOR_NOT_AVAILABLE, "commit {failed_offset} (last good {committed:?})");
        assert_eq!(fetch_committed(&mut raw, "full-disk-group", "filling"), (COORDINATOR_NOT_AVAILABLE, -1));
        assert_eq!(commit_offset(&mut raw, "full-disk-group", "filling", failed_offset + 1), COORDINATOR_NOT_AVAILABLE);
    });
    let mut broker = broker;
    assert!(broker.alive());
    broker.kill();
    drop(disk);
}

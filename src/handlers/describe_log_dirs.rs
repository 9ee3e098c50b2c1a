//! DescribeLogDirs (v1-4): the one data directory, its capacity, and the
//! size of every partition in it.

use std::rc::Rc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// Total and available bytes of the file system holding `dir`.
fn capacity(dir: &std::path::Path) -> (i64, i64) {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return (-1, -1) };
    // SAFETY: statvfs fills the zeroed struct from a valid NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return (-1, -1);
    }
    let block = stat.f_frsize as i64;
    (stat.f_blocks as i64 * block, stat.f_bavail as i64 * block)
}

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // DESCRIBE on the cluster; refused, v3+ says so and older versions list nothing, as Kafka answers.
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::Describe) {
        let response = DescribeLogDirsResponse::default();
        return if ctx.version() >= 3 { response.with_error_code(e.code()) } else { response };
    }
    let catalog = shard.catalog();
    let wanted: Vec<(std::sync::Arc<str>, i32, usize)> = match &request.topics {
        None => catalog
            .topics
            .values()
            .flat_map(|t| {
                (0..t.partitions()).filter_map(|p| t.host(p).map(|o| (t.name.clone(), p, o))).collect::<Vec<_>>()
            })
            .collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|t| catalog.topic(t.topic.0.as_str()))
            .flat_map(|t| {
                let asked: Vec<i32> = request
                    .topics
                    .as_ref()
                    .and_then(|ts| ts.iter().find(|x| x.topic.0.as_str() == &*t.name))
                    .map(|x| x.partitions.clone())
                    .unwrap_or_default();
                asked.into_iter().filter_map(|p| t.host(p).map(|o| (t.name.clone(), p, o))).collect::<Vec<_>>()
            })
            .collect(),
    };
    let work = wanted.iter().map(|(t, p, o)| (*o, (t.clone(), *p))).collect();
    let sizes = shard.scatter(work, |shard, parts| async move { shard.offsets_local(parts).await }).await;
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for ((topic, partition, _), size) in wanted.iter().zip(sizes) {
        let Ok(offsets) = size else { continue };
        let entry = DescribeLogDirsPartition::default()
            .with_partition_index(*partition)
            .with_partition_size(offsets.size_bytes as i64)
            .with_offset_lag(0);
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == &**topic => t.partitions.push(entry),
            _ => topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    let dir = std::fs::canonicalize(&shard.config.data_dir).unwrap_or_else(|_| shard.config.data_dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    if ctx.version() >= 4 {
        let (total, usable) = capacity(&dir);
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

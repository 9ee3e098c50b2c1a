//! The APIs and versions Sluice serves, as Kafka 4.x advertises them.
//!
//! ApiVersions answers from this table and the dispatcher refuses anything
//! outside it, so the two can never disagree.

use kafka_protocol::messages::ApiKey;

/// An API and the inclusive version range Sluice advertises for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub api_key: ApiKey,
    pub min: i16,
    pub max: i16,
    /// Lowest version actually accepted; below it requests are refused even
    /// though `min` is advertised (Kafka advertises Produce v0 but rejects
    /// v0-2 so that older librdkafka builds accept the broker, KAFKA-18659).
    pub accepted_min: i16,
}

const fn range(api_key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { api_key, min, max, accepted_min: min }
}

/// Every API Sluice serves.
pub const SUPPORTED: &[ApiRange] = &[
    // Produce v13 names topics by id; Fetch v18 adds a follower's high
    // watermark (ignored: followers send v12); ListOffsets v10 a timeout for remote
    // storage (none here); Metadata v13 a top-level error code.
    ApiRange { api_key: ApiKey::Produce, min: 0, max: 13, accepted_min: 3 },
    range(ApiKey::Fetch, 4, 18),
    range(ApiKey::ListOffsets, 1, 10),
    range(ApiKey::Metadata, 0, 13),
    range(ApiKey::ApiVersions, 0, 4),
    range(ApiKey::CreateTopics, 2, 7),
    range(ApiKey::DeleteTopics, 1, 6),
    range(ApiKey::OffsetForLeaderEpoch, 2, 4),
    range(ApiKey::DescribeCluster, 0, 2),
    range(ApiKey::ElectLeaders, 0, 2),
    range(ApiKey::AlterPartitionReassignments, 0, 1),
    range(ApiKey::ListPartitionReassignments, 0, 0),
    // Operator APIs of a single node that is its own KRaft controller.
    range(ApiKey::DescribeTopicPartitions, 0, 0),
    range(ApiKey::DescribeQuorum, 0, 2),
    range(ApiKey::UpdateFeatures, 0, 2),
    range(ApiKey::InitProducerId, 0, 5),
    range(ApiKey::FindCoordinator, 0, 6),
    range(ApiKey::JoinGroup, 0, 9),
    range(ApiKey::SyncGroup, 0, 5),
    range(ApiKey::Heartbeat, 0, 4),
    range(ApiKey::LeaveGroup, 0, 5),
    range(ApiKey::OffsetCommit, 2, 9),
    range(ApiKey::OffsetFetch, 1, 9),
    range(ApiKey::ListGroups, 0, 5),
    range(ApiKey::DescribeGroups, 0, 5),
    range(ApiKey::DeleteGroups, 0, 2),
    // KIP-848's consumer group protocol.
    range(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    range(ApiKey::ConsumerGroupDescribe, 0, 1),
    range(ApiKey::OffsetDelete, 0, 0),
    range(ApiKey::DescribeConfigs, 1, 4),
    range(ApiKey::AlterConfigs, 0, 2),
    range(ApiKey::IncrementalAlterConfigs, 0, 1),
    range(ApiKey::CreatePartitions, 0, 3),
    range(ApiKey::DeleteRecords, 0, 2),
    range(ApiKey::DescribeLogDirs, 1, 4),
    // Transactions, with transaction.version 2 (KIP-890 part 2): EndTxn v5
    // bumps the epoch per transaction, Produce v12+ and TxnOffsetCommit v5
    // add partitions and groups implicitly, AddPartitionsToTxn v5 is the
    // brokers' own addition. Clients use these only while the finalized
    // transaction.version is 2 (ApiVersions' finalized features), as with
    // Kafka, which advertises the versions whatever the level.
    range(ApiKey::AddPartitionsToTxn, 0, 5),
    range(ApiKey::AddOffsetsToTxn, 0, 4),
    range(ApiKey::EndTxn, 0, 5),
    range(ApiKey::TxnOffsetCommit, 0, 5),
    range(ApiKey::DescribeProducers, 0, 0),
    range(ApiKey::ListTransactions, 0, 1),
    range(ApiKey::DescribeTransactions, 0, 0),
    // Broker to broker in Kafka, and `kafka-transactions.sh abort`; v0 went with KIP-896.
    range(ApiKey::WriteTxnMarkers, 1, 1),
    // Security. SaslHandshake v0 (bare tokens outside Kafka's framing, before
    // Kafka 1.0) is not served: Kafka 4 dropped it too (KIP-896).
    range(ApiKey::SaslHandshake, 1, 1),
    range(ApiKey::SaslAuthenticate, 0, 2),
    range(ApiKey::CreateAcls, 2, 3),
    range(ApiKey::DescribeAcls, 1, 3),
    range(ApiKey::DeleteAcls, 2, 3),
    range(ApiKey::DescribeUserScramCredentials, 0, 0),
    range(ApiKey::AlterUserScramCredentials, 0, 0),
    range(ApiKey::DescribeClientQuotas, 0, 1),
    range(ApiKey::AlterClientQuotas, 0, 1),
    // Client telemetry (KIP-714): Kafka serves these only with a metrics
    // exporter plugin; Sluice keeps and shows what clients push itself.
    range(ApiKey::GetTelemetrySubscriptions, 0, 0),
    range(ApiKey::PushTelemetry, 0, 0),
    // v0 was ListClientMetricsResources.
    range(ApiKey::ListConfigResources, 0, 1),
];

/// The advertised range of `api_key`, if Sluice serves it.
pub fn supported(api_key: ApiKey) -> Option<ApiRange> {
    SUPPORTED.iter().copied().find(|r| r.api_key == api_key)
}

/// Whether a request at `version` of `api_key` is served.
pub fn accepts(api_key: ApiKey, version: i16) -> bool {
    supported(api_key).is_some_and(|r| version >= r.accepted_min && version <= r.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_ranges_are_decodable_by_the_codec() {
        for r in SUPPORTED {
            let codec = r.api_key.valid_versions();
            assert!(r.accepted_min >= codec.min, "{:?}", r.api_key);
            assert!(r.max <= codec.max, "{:?}", r.api_key);
            assert!(r.min <= r.accepted_min && r.accepted_min <= r.max);
        }
    }

    #[test]
    fn produce_v2_is_advertised_but_refused() {
        assert!(!accepts(ApiKey::Produce, 2));
        assert!(accepts(ApiKey::Produce, 3));
        assert!(accepts(ApiKey::Fetch, 18));
        assert!(!accepts(ApiKey::Fetch, 19));
        assert!(accepts(ApiKey::JoinGroup, 0));
        assert!(!accepts(ApiKey::OffsetCommit, 1));
    }
}

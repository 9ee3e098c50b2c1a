//! Kafka's feature flags (KIP-584) as Sluice supports them: the levels it
//! advertises in ApiVersions, the finalized levels the controller keeps in
//! the catalog, and UpdateFeatures' rules, as Kafka 4.1's controller applies
//! them (`FeatureControlManager.updateFeature`, `QuorumFeatures`), so that
//! `kafka-features.sh` reads and changes them as it does against Kafka.
//!
//! Sluice advertises the features Kafka 4.1 advertises, each with the levels
//! Sluice implements, not Kafka's: a level is supported only if Sluice
//! behaves as Kafka does at that level.

use std::collections::BTreeMap;

/// The name of the metadata version feature.
pub const METADATA_VERSION: &str = "metadata.version";
/// The name of the KRaft (quorum) version feature.
pub const KRAFT_VERSION: &str = "kraft.version";
/// The name of the transaction protocol feature.
pub const TRANSACTION_VERSION: &str = "transaction.version";
/// The name of the group protocol feature.
pub const GROUP_VERSION: &str = "group.version";
/// The name of the eligible leader replicas feature (KIP-966).
pub const ELR_VERSION: &str = "eligible.leader.replicas.version";
/// The name of the share groups feature (KIP-932).
pub const SHARE_VERSION: &str = "share.version";

/// Kafka's metadata.version 4.1-IV1, the newest of Kafka 4.1.
pub const METADATA_VERSION_4_1_IV1: i16 = 27;

/// A feature Sluice advertises: the levels it supports and the level a new
/// data directory starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedFeature {
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    pub initial: i16,
}

/// Every feature Sluice advertises, in Kafka's order.
pub const SUPPORTED: [SupportedFeature; 6] = [
    // The protocol served is Kafka 4.1's. Sluice keeps no metadata log whose
    // record formats a lower level would select, nor can it turn off what
    // lower levels lack (SCRAM before 3.5-IV2, ELR before 4.0-IV1), so no
    // other level is honest.
    SupportedFeature {
        name: METADATA_VERSION,
        min: METADATA_VERSION_4_1_IV1,
        max: METADATA_VERSION_4_1_IV1,
        initial: METADATA_VERSION_4_1_IV1,
    },
    // 0: a static quorum of one voter. Level 1 (KIP-853's dynamic voter set,
    // AddRaftVoter and RemoveRaftVoter) is not served.
    SupportedFeature { name: KRAFT_VERSION, min: 0, max: 0, initial: 0 },
    // Level 1 differs from 0 only in the format of Kafka's own transaction
    // log, which Sluice does not write. Level 2 is KIP-890 part 2: clients
    // that see it finalized use EndTxn v5 (an epoch bump per transaction),
    // Produce v12+ and TxnOffsetCommit v5 (partitions and groups join the
    // transaction implicitly); the coordinator's own aborts bump as Kafka's
    // do at that level. A new cluster starts at 2, as Kafka 4.1's
    // (`TransactionVersion.TV_2` needs metadata.version 4.0-IV2).
    SupportedFeature { name: TRANSACTION_VERSION, min: 0, max: 2, initial: 2 },
    // Level 1 turns on KIP-848's consumer protocol: below it
    // ConsumerGroupHeartbeat and ConsumerGroupDescribe answer
    // UNSUPPORTED_VERSION (still listed by ApiVersions), as Kafka's
    // `KafkaApis.isConsumerGroupProtocolEnabled`. A new cluster starts at 1,
    // Kafka 4.1's default for its metadata.version.
    SupportedFeature { name: GROUP_VERSION, min: 0, max: 1, initial: 1 },
    // With one replica per partition the ISR never shrinks below it, so the
    // eligible leader replicas are empty whether the feature is on or off and
    // both levels behave as Kafka does. A new cluster starts at 1, as Kafka 4.1's.
    SupportedFeature { name: ELR_VERSION, min: 0, max: 1, initial: 1 },
    // Share groups are not served.
    SupportedFeature { name: SHARE_VERSION, min: 0, max: 0, initial: 0 },
];

/// Features Kafka 4.1 knows but advertises at no level (none of theirs is
/// production-ready): setting one to 0 is a no-op there, and here.
const KNOWN_UNADVERTISED: [&str; 1] = ["streams.version"];

/// Kafka's dependencies between feature levels: (feature, level, needs this
/// feature, at least this level).
const DEPENDENCIES: [(&str, i16, &str, i16); 1] = [(ELR_VERSION, 1, METADATA_VERSION, 23)];

/// The range Sluice supports of `name`; `0..=0` for one it does not know
/// (Kafka's `QuorumFeatures.DISABLED`).
pub fn supported(name: &str) -> (i16, i16) {
    SUPPORTED.iter().find(|f| f.name == name).map_or((0, 0), |f| (f.min, f.max))
}

/// The finalized level of each feature; a feature at level 0 is absent, as
/// in Kafka's feature image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureLevels(BTreeMap<String, i16>);

impl Default for FeatureLevels {
    /// The levels of a new data directory.
    fn default() -> FeatureLevels {
        FeatureLevels(SUPPORTED.iter().filter(|f| f.initial != 0).map(|f| (f.name.to_string(), f.initial)).collect())
    }
}

impl FeatureLevels {
    /// The levels of a catalog written before levels were stored: those of
    /// a new data directory, except `transaction.version`, which Sluice then
    /// served at 1. An upgrade keeps the levels the cluster had, as Kafka's does.
    pub fn unrecorded() -> FeatureLevels {
        let mut levels = FeatureLevels::default();
        levels.set(TRANSACTION_VERSION, 1);
        levels
    }

    /// Levels as stored: `(name, level)` pairs, zeros dropped.
    pub fn from_levels(levels: impl IntoIterator<Item = (String, i16)>) -> FeatureLevels {
        FeatureLevels(levels.into_iter().filter(|(_, level)| *level != 0).collect())
    }

    /// The finalized level of `name`, 0 if it is not finalized.
    pub fn level(&self, name: &str) -> i16 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// The finalized features and their levels, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i16)> {
        self.0.iter().map(|(name, level)| (name.as_str(), *level))
    }

    fn set(&mut self, name: &str, level: i16) {
        if level == 0 {
            self.0.remove(name);
        } else {
            self.0.insert(name.to_string(), level);
        }
    }
}

/// UpdateFeatures' upgrade type codes (`FeatureUpdate.UpgradeType`).
pub mod upgrade_type {
    pub const UPGRADE: i8 = 1;
    pub const SAFE_DOWNGRADE: i8 = 2;
    pub const UNSAFE_DOWNGRADE: i8 = 3;
}

/// One requested change: the feature, the level and the upgrade type code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureUpdate {
    pub name: String,
    pub level: i16,
    pub upgrade_type: i8,
}

/// Applies `updates` to `current` as Kafka's controller does: all of them, or
/// none and the first refusal's message (for INVALID_UPDATE_VERSION).
/// `node_id` names this node, Kafka's "local controller", in messages.
pub fn apply(current: &FeatureLevels, updates: &[FeatureUpdate], node_id: i32) -> Result<FeatureLevels, String> {
    let mut proposed = current.clone();
    for update in updates {
        proposed.set(&update.name, update.level);
    }
    for update in updates {
        check(current, &proposed, update, node_id).map_err(|reason| {
            format!("Invalid update version {} for feature {}. {reason}", update.level, update.name)
        })?;
    }
    Ok(proposed)
}

/// Why one update is refused, in Kafka's words.
fn check(
    current: &FeatureLevels,
    proposed: &FeatureLevels,
    update: &FeatureUpdate,
    node_id: i32,
) -> Result<(), String> {
    let (name, level) = (update.name.as_str(), update.level);
    let upgrade = match update.upgrade_type {
        upgrade_type::UPGRADE => true,
        upgrade_type::SAFE_DOWNGRADE | upgrade_type::UNSAFE_DOWNGRADE => false,
        _ => return Err("The controller does not support the given upgrade type.".into()),
    };
    if level < 0 {
        return Err("A feature version cannot be less than 0.".into());
    }
    let (min, max) = supported(name);
    if !(min..=max).contains(&level) {
        return Err(if max == 0 {
            format!("Local controller {node_id} does not support this feature.")
        } else if min == max {
            format!("Local controller {node_id} only supports versions {min}")
        } else {
            format!("Local controller {node_id} only supports versions {min}-{max}")
        });
    }
    let now = current.level(name);
    if level < now && upgrade {
        return Err(
            "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
                .into(),
        );
    }
    if level > now && !upgrade {
        return Err("Can't downgrade to a newer version.".into());
    }
    if name == KRAFT_VERSION && !upgrade && level != now {
        return Err("Can't downgrade the version of this feature.".into());
    }
    if name == METADATA_VERSION || name == KRAFT_VERSION {
        return Ok(());
    }
    if !SUPPORTED.iter().any(|f| f.name == name) && !KNOWN_UNADVERTISED.contains(&name) {
        return Err(format!("Feature {name} not found."));
    }
    for (feature, at, needs, needed) in DEPENDENCIES {
        if feature == name && level >= at && proposed.level(needs) < needed {
            return Err(format!("{name} could not be set to {level} because it depends on {needs} level {needed}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, level: i16, upgrade_type: i8) -> FeatureUpdate {
        FeatureUpdate { name: name.into(), level, upgrade_type }
    }

    fn refusal(current: &FeatureLevels, updates: &[FeatureUpdate]) -> String {
        apply(current, updates, 1).expect_err("refused")
    }

    #[test]
    fn a_new_cluster_starts_at_kafka_4_1_levels_sluice_implements() {
        let levels = FeatureLevels::default();
        assert_eq!(levels.level(METADATA_VERSION), 27);
        assert_eq!(levels.level(TRANSACTION_VERSION), 2);
        assert_eq!(levels.level(ELR_VERSION), 1);
        assert_eq!(levels.level(GROUP_VERSION), 1);
        assert_eq!(levels.iter().count(), 4, "features at 0 are not finalized");
        for f in SUPPORTED {
            assert!(f.min <= f.initial && f.initial <= f.max, "{}", f.name);
        }
    }

    #[test]
    fn supported_levels_are_accepted_all_together() {
        let current = FeatureLevels::default();
        let next = apply(
            &current,
            &[update(ELR_VERSION, 0, upgrade_type::SAFE_DOWNGRADE), update(TRANSACTION_VERSION, 0, 2)],
            1,
        )
        .unwrap();
        assert_eq!(next.level(ELR_VERSION), 0);
        assert_eq!(next.level(TRANSACTION_VERSION), 0);
        assert_eq!(next.iter().count(), 2, "metadata.version and group.version");
        let back = apply(&next, &[update(TRANSACTION_VERSION, 1, upgrade_type::UPGRADE)], 1).unwrap();
        assert_eq!(back.level(TRANSACTION_VERSION), 1);
        // Transaction version 2 has no dependency Sluice's metadata.version lacks: up and down freely.
        let v2 = apply(&back, &[update(TRANSACTION_VERSION, 2, upgrade_type::UPGRADE)], 1).unwrap();
        assert_eq!(v2.level(TRANSACTION_VERSION), 2);
        let v1 = apply(&v2, &[update(TRANSACTION_VERSION, 1, upgrade_type::SAFE_DOWNGRADE)], 1).unwrap();
        assert_eq!(v1.level(TRANSACTION_VERSION), 1);
        let v0 = apply(&v2, &[update(TRANSACTION_VERSION, 0, upgrade_type::UNSAFE_DOWNGRADE)], 1).unwrap();
        assert_eq!(v0.level(TRANSACTION_VERSION), 0);
        let skip = apply(&next, &[update(TRANSACTION_VERSION, 2, upgrade_type::UPGRADE)], 1).unwrap();
        assert_eq!(skip.level(TRANSACTION_VERSION), 2, "0 to 2 in one step");
        // Setting the level a feature has is accepted (and changes nothing).
        assert_eq!(apply(&current, &[update(METADATA_VERSION, 27, 1), update(KRAFT_VERSION, 0, 1)], 1), Ok(current));
    }

    #[test]
    fn refusals_use_kafkas_words() {
        let current = FeatureLevels::default();
        assert_eq!(
            refusal(&current, &[update(TRANSACTION_VERSION, 3, 1)]),
            "Invalid update version 3 for feature transaction.version. Local controller 1 only supports versions 0-2"
        );
        assert_eq!(
            refusal(&current, &[update(TRANSACTION_VERSION, 1, upgrade_type::UPGRADE)]),
            "Invalid update version 1 for feature transaction.version. Can't downgrade the version of this feature \
             without setting the upgrade type to either safe or unsafe downgrade."
        );
        assert_eq!(
            refusal(&current, &[update(GROUP_VERSION, 2, 1)]),
            "Invalid update version 2 for feature group.version. Local controller 1 only supports versions 0-1"
        );
        assert_eq!(
            refusal(&current, &[update(SHARE_VERSION, 1, 1)]),
            "Invalid update version 1 for feature share.version. Local controller 1 does not support this feature."
        );
        assert_eq!(
            refusal(&current, &[update(METADATA_VERSION, 26, 2)]),
            "Invalid update version 26 for feature metadata.version. Local controller 1 only supports versions 27"
        );
        assert_eq!(
            refusal(&current, &[update(TRANSACTION_VERSION, 0, 1)]),
            "Invalid update version 0 for feature transaction.version. Can't downgrade the version of this feature \
             without setting the upgrade type to either safe or unsafe downgrade."
        );
        let off = apply(&current, &[update(TRANSACTION_VERSION, 0, 2)], 1).unwrap();
        assert_eq!(
            refusal(&off, &[update(TRANSACTION_VERSION, 1, 2)]),
            "Invalid update version 1 for feature transaction.version. Can't downgrade to a newer version."
        );
        let one = apply(&current, &[update(TRANSACTION_VERSION, 1, 2)], 1).unwrap();
        assert_eq!(
            refusal(&one, &[update(TRANSACTION_VERSION, 2, upgrade_type::SAFE_DOWNGRADE)]),
            "Invalid update version 2 for feature transaction.version. Can't downgrade to a newer version."
        );
        assert_eq!(
            refusal(&current, &[update(ELR_VERSION, -1, 3)]),
            "Invalid update version -1 for feature eligible.leader.replicas.version. A feature version cannot be less than 0."
        );
        assert_eq!(
            refusal(&current, &[update(ELR_VERSION, 1, 4)]),
            "Invalid update version 1 for feature eligible.leader.replicas.version. The controller does not support the given upgrade type."
        );
        assert_eq!(
            refusal(&current, &[update("foo.version", 0, 1)]),
            "Invalid update version 0 for feature foo.version. Feature foo.version not found."
        );
        assert_eq!(apply(&current, &[update("streams.version", 0, 2)], 1), Ok(current.clone()));
        // One refusal refuses the whole request.
        assert!(apply(&current, &[update(ELR_VERSION, 0, 2), update(GROUP_VERSION, 2, 1)], 1).is_err());
    }

    #[test]
    fn group_version_goes_down_and_up_as_kafka_allows() {
        let current = FeatureLevels::default();
        // Kafka refuses a downgrade asked for as an upgrade, and an upgrade asked for as a downgrade.
        assert!(refusal(&current, &[update(GROUP_VERSION, 0, upgrade_type::UPGRADE)])
            .contains("Can't downgrade the version of this feature without setting the upgrade type"));
        let off = apply(&current, &[update(GROUP_VERSION, 0, upgrade_type::SAFE_DOWNGRADE)], 1).unwrap();
        assert_eq!(off.level(GROUP_VERSION), 0);
        assert!(off.iter().all(|(name, _)| name != GROUP_VERSION), "level 0 is not finalized");
        assert!(refusal(&off, &[update(GROUP_VERSION, 1, upgrade_type::SAFE_DOWNGRADE)])
            .contains("Can't downgrade to a newer version."));
        let on = apply(&off, &[update(GROUP_VERSION, 1, upgrade_type::UPGRADE)], 1).unwrap();
        assert_eq!(on, current);
    }

    #[test]
    fn dependencies_are_checked_against_the_levels_asked_for() {
        // metadata.version 20 is not supported here, but an old catalog could name it.
        let old = FeatureLevels::from_levels([(METADATA_VERSION.to_string(), 20)]);
        assert!(check(&old, &old, &update(ELR_VERSION, 1, 1), 1).unwrap_err().contains(
            "eligible.leader.replicas.version could not be set to 1 because it depends on metadata.version level 23"
        ));
    }
}

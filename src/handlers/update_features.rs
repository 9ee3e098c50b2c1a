//! UpdateFeatures (v0-2): changes finalized feature levels through the
//! controller, as Kafka's controller does (ALTER on the cluster required):
//! levels Sluice supports are stored with the catalog and adopted by every
//! shard before the answer; a level outside them, a downgrade asked as an
//! upgrade or the reverse refuses the whole request with
//! INVALID_UPDATE_VERSION and Kafka's message. `validate_only` checks
//! without storing. As in Kafka 4.1, the upgrade type is read from its own
//! field, so a v0 request (which has `allow_downgrade` instead) is an upgrade.

use std::rc::Rc;

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::metadata::features::FeatureUpdate;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

fn failed(error: ResponseError, message: String) -> UpdateFeaturesResponse {
    UpdateFeaturesResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: UpdateFeaturesRequest) -> UpdateFeaturesResponse {
    if !Access::of(shard, ctx).cluster(AclOperation::Alter) {
        let error = ResponseError::ClusterAuthorizationFailed;
        return failed(error, error.to_string());
    }
    let updates: Vec<FeatureUpdate> = request
        .feature_updates
        .iter()
        .map(|u| FeatureUpdate {
            name: u.feature.to_string(),
            level: u.max_version_level,
            upgrade_type: u.upgrade_type,
        })
        .collect();
    if shard.config.cluster.is_some() {
        return failed(ResponseError::InvalidRequest, super::NOT_CLUSTER_WIDE.to_string());
    }
    let validate_only = request.validate_only;
    let update = move |shard: Rc<Shard>| async move {
        shard.controller().update_features(&shard.env(), updates, validate_only).await
    };
    match shard.on_controller(update).await {
        Ok(Ok(())) => {}
        Ok(Err((ResponseError::InvalidUpdateVersion, message))) => {
            let message =
                format!("The update failed for all features since the following feature had an error: {message}");
            return failed(ResponseError::InvalidUpdateVersion, message);
        }
        Ok(Err((error, message))) => return failed(error, message),
        Err(e) => return failed(ResponseError::UnknownServerError, e.to_string()),
    }
    // v2 answers a success with no per-feature results; before it, each
    // feature gets Kafka's `Errors.NONE.message()`.
    let results = if ctx.version() <= 1 {
        request
            .feature_updates
            .iter()
            .map(|u| {
                UpdatableFeatureResult::default()
                    .with_feature(u.feature.clone())
                    .with_error_message(Some(StrBytes::from_static_str("NONE")))
            })
            .collect()
    } else {
        Vec::new()
    };
    UpdateFeaturesResponse::default().with_error_message(None).with_results(results)
}

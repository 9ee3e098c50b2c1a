//! ApiVersions (v0-4): the table in `protocol::versions`, and from v3 the
//! features Sluice supports and the levels finalized in the catalog (KIP-584),
//! as Kafka's broker answers them.

use std::rc::Rc;

use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::metadata::features;
use crate::protocol::frame::{encode_response, FrameError, ResponseFrame};
use crate::protocol::{versions, ResponseError};
use crate::server::session::RequestContext;
use crate::shard::Shard;

fn api_keys() -> Vec<ApiVersion> {
    versions::SUPPORTED
        .iter()
        .map(|r| ApiVersion::default().with_api_key(r.api_key as i16).with_min_version(r.min).with_max_version(r.max))
        .collect()
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse {
    if ctx.version() >= 3 {
        // What client telemetry's `client_software_*` selectors match (bounded by the frame).
        let cut = |s: &str| s.chars().take(crate::constants::TELEMETRY_LABEL_BYTES_MAX).collect::<String>();
        *ctx.session.client_software.borrow_mut() =
            Some((cut(&request.client_software_name), cut(&request.client_software_version)));
    }
    let response = ApiVersionsResponse::default().with_api_keys(api_keys());
    if ctx.version() < 3 {
        return response;
    }
    // Before v4, features whose lowest supported level is 0 are left out:
    // older clients cannot read them (KAFKA-17492).
    let level_0_readable = ctx.version() >= 4;
    let supported = features::SUPPORTED
        .iter()
        .filter(|f| level_0_readable || f.min > 0)
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect();
    let catalog = shard.catalog();
    let finalized = catalog
        .features
        .iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_string(name.to_string()))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    response
        .with_supported_features(supported)
        .with_finalized_features(finalized)
        .with_finalized_features_epoch(catalog.version as i64)
}

/// Kafka's answer to an ApiVersions version it does not know: a v0-shaped
/// response with UNSUPPORTED_VERSION and, as KIP-511 has it, only
/// ApiVersions' own range, so the client retries with a version both sides
/// speak (and then sends its software name and reads the features).
pub fn unsupported_version(correlation_id: i32) -> Result<ResponseFrame, FrameError> {
    let own = api_keys().into_iter().filter(|k| k.api_key == ApiKey::ApiVersions as i16).collect();
    let response =
        ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()).with_api_keys(own);
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &response)
}

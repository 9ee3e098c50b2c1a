//! ApiVersions (v0-4): the table in `protocol::versions`.

use std::rc::Rc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

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

pub async fn handle(_shard: &Rc<Shard>, _ctx: &RequestContext, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// Kafka's answer to an ApiVersions version it does not know: a v0-shaped
/// response with UNSUPPORTED_VERSION and the supported ranges, so the client
/// can retry with a version both sides speak.
pub fn unsupported_version(correlation_id: i32) -> Result<ResponseFrame, FrameError> {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &response)
}

//! PushTelemetry (v0, KIP-714): a client's metrics, OTLP `MetricsData`,
//! possibly compressed. Checked and stored by the controller's shard
//! (`sluice_domain::telemetry`), whose latest values the admin listener shows.

use std::rc::Rc;

use kafka_protocol::messages::{PushTelemetryRequest, PushTelemetryResponse};

use super::get_telemetry_subscriptions::{client_attributes, now_ms};
use crate::protocol::ResponseError;
use crate::server::session::RequestContext;
use crate::shard::Shard;
use sluice_domain::telemetry::Push;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: PushTelemetryRequest) -> PushTelemetryResponse {
    let attributes = client_attributes(ctx);
    let now_ms = now_ms();
    let outcome = shard
        .on_controller(move |shard: Rc<Shard>| async move {
            let mut telemetry = shard.telemetry.borrow_mut();
            telemetry.update_subscriptions(&shard.catalog().client_metrics);
            let push = Push {
                client_instance_id: request.client_instance_id,
                subscription_id: request.subscription_id,
                terminating: request.terminating,
                compression_type: request.compression_type,
                metrics: &request.metrics,
            };
            telemetry.push(now_ms, push, attributes)
        })
        .await;
    let code = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err((code, message))) => {
            tracing::debug!(%message, "telemetry push refused");
            code.code()
        }
        Err(_) => ResponseError::UnknownServerError.code(),
    };
    PushTelemetryResponse::default().with_error_code(code)
}

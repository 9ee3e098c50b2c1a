//! Client quotas as every handler applies them: the connection's user and
//! client id resolved against the quotas in the shard's security snapshot
//! (Kafka's precedence), usage recorded in the shard's sensors, and the
//! throttle time the answer carries. A throttled connection is also muted
//! for that long (KIP-219). With no quota configured this is one emptiness check.

use std::rc::Rc;
use std::time::Duration;

use crate::constants::THROTTLE_MS_MAX;
use crate::security::quota::{QuotaKey, ResolvedQuota};
use crate::server::session::RequestContext;
use crate::shard::Shard;

fn now_ms() -> u64 {
    crate::clock::now_ms().max(0) as u64
}

/// The quota of `key` that applies to this request's user and client id.
fn resolve(shard: &Rc<Shard>, ctx: &RequestContext, key: QuotaKey) -> Option<ResolvedQuota> {
    let security = shard.security();
    if security.state.quotas.is_empty() {
        return None;
    }
    let client_id = ctx.header.client_id.as_ref().map(|c| c.as_str()).unwrap_or_default();
    security.state.quotas.quota_for(&ctx.session.quota_user(), client_id, key)
}

fn clamp(ms: u64) -> u64 {
    ms.min(THROTTLE_MS_MAX)
}

/// Records `bytes` against the byte-rate quota `key` (produce or fetch);
/// returns the throttle time, 0 within the quota.
pub fn record_bytes(shard: &Rc<Shard>, ctx: &RequestContext, key: QuotaKey, bytes: usize) -> u64 {
    let Some(quota) = resolve(shard, ctx, key) else { return 0 };
    let now = now_ms();
    let mut usage = shard.quota_usage.borrow_mut();
    clamp(usage.rate(key, quota.sensor, now).record_and_throttle_time_ms(now, bytes as f64, quota.value))
}

/// Takes back bytes recorded by [`record_bytes`] (a throttled fetch answers
/// without its data, so the data does not count, as in Kafka).
pub fn unrecord_bytes(shard: &Rc<Shard>, ctx: &RequestContext, key: QuotaKey, bytes: usize) {
    let Some(quota) = resolve(shard, ctx, key) else { return };
    let now = now_ms();
    shard.quota_usage.borrow_mut().rate(key, quota.sensor, now).record(now, -(bytes as f64));
}

/// Records the time the shard spent on a request against `request_percentage`
/// (percent of one shard's time); returns the throttle time, at most one window, as Kafka caps it.
pub fn record_request_time(shard: &Rc<Shard>, ctx: &RequestContext, busy: Duration) -> u64 {
    let Some(quota) = resolve(shard, ctx, QuotaKey::RequestPercentage) else { return 0 };
    let now = now_ms();
    let mut usage = shard.quota_usage.borrow_mut();
    let sampler = usage.rate(QuotaKey::RequestPercentage, quota.sensor, now);
    sampler.record(now, busy.as_secs_f64() * 100.0);
    let window = sampler.window_ms();
    clamp(sampler.bounded_throttle_time_ms(now, quota.value, window))
}

/// `controller_mutation_rate` for `partitions` created or deleted: `Err` with
/// the throttle time when a strict request (CreateTopics v6+,
/// CreatePartitions v3+, DeleteTopics v5+) must be refused with
/// THROTTLING_QUOTA_EXCEEDED; `Ok` with the throttle time otherwise.
fn record_mutations(shard: &Rc<Shard>, ctx: &RequestContext, partitions: u32, strict: bool) -> Result<u64, u64> {
    let Some(quota) = resolve(shard, ctx, QuotaKey::ControllerMutationRate) else { return Ok(0) };
    let now = now_ms();
    let mut usage = shard.quota_usage.borrow_mut();
    let bucket = usage.mutations(quota.sensor);
    if strict {
        bucket.try_record(now, partitions as f64, quota.value).map_err(clamp)?;
        Ok(clamp(bucket.throttle_time_ms(now, quota.value)))
    } else {
        Ok(clamp(bucket.record_permissive(now, partitions as f64, quota.value)))
    }
}

/// [`record_mutations`] for one topic of a request: `Some(THROTTLING_QUOTA_EXCEEDED)`
/// when it must be refused; the throttle time goes into `throttle_ms` (the request's largest).
pub fn mutations_verdict(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    partitions: u32,
    strict: bool,
    throttle_ms: &mut u64,
) -> Option<crate::protocol::ResponseError> {
    match record_mutations(shard, ctx, partitions, strict) {
        Ok(ms) => {
            *throttle_ms = (*throttle_ms).max(ms);
            None
        }
        Err(ms) => {
            *throttle_ms = (*throttle_ms).max(ms);
            Some(crate::protocol::ResponseError::ThrottlingQuotaExceeded)
        }
    }
}

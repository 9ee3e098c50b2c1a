//! ListGroups (v0-5, state filter from v4, type filter from v5): every
//! shard's groups, classic and consumer (KIP-848).

use std::rc::Rc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::group::coordinator::GroupKind;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    let version = ctx.version();
    let mut groups = Vec::new();
    for answer in shard.on_every_shard(|shard| async move { shard.groups.list() }).await {
        match answer {
            Ok(listed) => groups.extend(listed),
            Err(_) => {
                return ListGroupsResponse::default().with_error_code(ResponseError::CoordinatorLoadInProgress.code())
            }
        }
    }
    // DESCRIBE on the cluster lists every group; otherwise only the groups the principal may describe.
    let access = Access::of(shard, ctx);
    if !access.cluster(AclOperation::Describe) {
        groups.retain(|(id, _, _, _)| access.group(AclOperation::Describe, id));
    }
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let listed = groups
        .into_iter()
        .filter(|(_, _, state, _)| version < 4 || states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|(_, _, _, kind)| version < 5 || types.is_empty() || types.iter().any(|t| t == type_name(*kind)))
        .map(|(id, protocol_type, state, kind)| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(id)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            if version >= 4 {
                g = g.with_group_state(StrBytes::from_static_str(state));
            }
            if version >= 5 {
                g = g.with_group_type(StrBytes::from_static_str(type_name(kind)));
            }
            g
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

/// Kafka's group type names, as the v5 filter and field spell them.
fn type_name(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Classic => "classic",
        GroupKind::Consumer => "consumer",
    }
}

//! The one authorization check every handler goes through: the connection's
//! principal and host against the shard's authorizer snapshot (one lookup, no
//! lock, no hop to another shard). With no authorizer configured every check
//! passes.

use std::rc::Rc;

use crate::protocol::ResponseError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::server::session::RequestContext;
use crate::shard::{Shard, ShardSecurity};

/// Kafka's name of the one cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Operations a Metadata or DescribeGroups answer may list as authorized, per resource type.
const TOPIC_OPERATIONS: [AclOperation; 7] = [
    AclOperation::Read,
    AclOperation::Write,
    AclOperation::Create,
    AclOperation::Delete,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::DescribeConfigs,
];
const TOPIC_OPERATIONS_MORE: [AclOperation; 1] = [AclOperation::AlterConfigs];
const GROUP_OPERATIONS: [AclOperation; 3] = [AclOperation::Read, AclOperation::Describe, AclOperation::Delete];
const CLUSTER_OPERATIONS: [AclOperation; 9] = [
    AclOperation::Create,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
    AclOperation::CreateTokens,
    AclOperation::DescribeTokens,
];

/// A request's view of the authorizer.
pub struct Access {
    security: Rc<ShardSecurity>,
    principal: Rc<str>,
    host: Rc<str>,
}

impl Access {
    pub fn of(shard: &Rc<Shard>, ctx: &RequestContext) -> Access {
        Access { security: shard.security(), principal: ctx.session.principal(), host: ctx.session.host.clone() }
    }

    /// Whether the principal may do `operation` on the resource.
    pub fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        self.security.authorizer.authorize(&self.principal, &self.host, operation, resource_type, name)
    }

    pub fn topic(&self, operation: AclOperation, name: &str) -> bool {
        self.allows(operation, ResourceType::Topic, name)
    }

    pub fn group(&self, operation: AclOperation, id: &str) -> bool {
        self.allows(operation, ResourceType::Group, id)
    }

    pub fn transactional_id(&self, operation: AclOperation, id: &str) -> bool {
        self.allows(operation, ResourceType::TransactionalId, id)
    }

    pub fn cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// `Ok` when the cluster operation is allowed, CLUSTER_AUTHORIZATION_FAILED otherwise.
    pub fn require_cluster(&self, operation: AclOperation) -> Result<(), ResponseError> {
        if self.cluster(operation) {
            Ok(())
        } else {
            Err(ResponseError::ClusterAuthorizationFailed)
        }
    }

    /// Whether the principal may do `operation` on some resource of the type
    /// (Kafka's `authorizeByResourceType`: used where a producer needs WRITE on
    /// any topic to be given a producer id).
    pub fn any_of_type(&self, operation: AclOperation, resource_type: ResourceType) -> bool {
        self.security.authorizer.authorize_by_resource_type(&self.principal, &self.host, operation, resource_type)
    }

    /// Kafka's authorized-operations bit set of a resource (bit `op` set for
    /// each allowed operation code), as Metadata and DescribeGroups report it.
    pub fn operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        let candidates: Vec<AclOperation> = match resource_type {
            ResourceType::Topic => TOPIC_OPERATIONS.iter().chain(TOPIC_OPERATIONS_MORE.iter()).copied().collect(),
            ResourceType::Group => GROUP_OPERATIONS.to_vec(),
            ResourceType::Cluster => CLUSTER_OPERATIONS.to_vec(),
            _ => Vec::new(),
        };
        candidates
            .into_iter()
            .filter(|op| self.allows(*op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

//! ACL bindings and filters from the wire codes of CreateAcls, DescribeAcls
//! and DeleteAcls, validated as Kafka validates them.

use kafka_protocol::messages::create_acls_request::AclCreation;

use crate::security::acl::{AclBinding, AclFilter, AclOperation, AclPermission, PatternType, ResourceType};

/// A CreateAcls creation as a binding, or the message Kafka refuses it with.
pub fn binding_from_creation(c: &AclCreation) -> Result<AclBinding, String> {
    let binding = AclBinding {
        resource_type: ResourceType::from_code(c.resource_type).unwrap_or(ResourceType::Unknown),
        resource_name: c.resource_name.to_string(),
        pattern_type: PatternType::from_code(c.resource_pattern_type).unwrap_or(PatternType::Unknown),
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: AclOperation::from_code(c.operation).unwrap_or(AclOperation::Unknown),
        permission: AclPermission::from_code(c.permission_type).unwrap_or(AclPermission::Unknown),
    };
    binding.validate().map_err(|e| e.message)?;
    Ok(binding)
}

/// A DescribeAcls or DeleteAcls filter, or the message Kafka refuses it with.
#[allow(clippy::too_many_arguments)]
pub fn filter_from_codes(
    resource_type: i8,
    resource_name: Option<String>,
    pattern_type: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission: i8,
    deleting: bool,
) -> Result<AclFilter, String> {
    let filter = AclFilter {
        resource_type: ResourceType::from_code(resource_type).unwrap_or(ResourceType::Unknown),
        resource_name,
        pattern_type: PatternType::from_code(pattern_type).unwrap_or(PatternType::Unknown),
        principal,
        host,
        operation: AclOperation::from_code(operation).unwrap_or(AclOperation::Unknown),
        permission: AclPermission::from_code(permission).unwrap_or(AclPermission::Unknown),
    };
    let valid = if deleting { filter.validate_for_delete() } else { filter.validate_for_describe() };
    valid.map_err(|e| e.message)?;
    Ok(filter)
}

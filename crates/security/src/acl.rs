//! Kafka's ACL model and the rules of its `StandardAuthorizer`.
//!
//! * [`ResourceType`], [`PatternType`], [`AclOperation`] and [`AclPermission`]
//!   carry Kafka's wire codes and names.
//! * [`AclBinding`] is one concrete ACL (Kafka's `AclBinding`: a resource
//!   pattern plus an access control entry); [`AclBinding::validate`] applies
//!   the checks a CreateAcls request goes through.
//! * [`AclFilter`] is Kafka's `AclBindingFilter`, used by DescribeAcls and
//!   DeleteAcls.
//! * [`Acls`] is the durable set of bindings, with a line-oriented text
//!   encoding ([`encode_line`] / [`decode_line`]).
//! * [`Authorizer`] is an immutable, indexed snapshot answering
//!   "may this principal do this operation on this resource?" exactly as
//!   `StandardAuthorizer` does.

use crate::text::{percent_decode, percent_encode};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::ops::Bound;
use std::str::FromStr;

/// Kafka's `INVALID_REQUEST` error code, which every ACL validation failure
/// maps to.
pub const INVALID_REQUEST: i16 = 42;

/// The only resource name allowed for [`ResourceType::Cluster`].
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// A literal resource name matching every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";

/// The ACL principal matching every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// The ACL host matching every host.
pub const WILDCARD_HOST: &str = "*";

/// Defines a Kafka enum with its wire codes and Java constant names.
macro_rules! kafka_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i8)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $code, )+
        }

        impl $name {
            /// Every value, in wire-code order.
            pub const VALUES: &'static [$name] = &[$($name::$variant,)+];

            /// The value with Kafka's wire code `code`, if there is one.
            pub fn from_code(code: i8) -> Option<Self> {
                match code {
                    $( $code => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// Kafka's wire code for this value.
            pub fn code(self) -> i8 {
                self as i8
            }

            /// Kafka's name for this value (the Java enum constant).
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = String;

            /// Parses Kafka's name for a value, ignoring ASCII case.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::VALUES
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(s))
                    .ok_or_else(|| format!("unknown {} `{}`", stringify!($name), s))
            }
        }
    };
}

kafka_enum! {
    /// The kind of resource an ACL protects (Kafka's `ResourceType`).
    ResourceType {
        /// A type this broker does not understand.
        Unknown = 0 => "UNKNOWN",
        /// In a filter: any resource type.
        Any = 1 => "ANY",
        /// A topic.
        Topic = 2 => "TOPIC",
        /// A consumer group.
        Group = 3 => "GROUP",
        /// The cluster as a whole (the only name is `kafka-cluster`).
        Cluster = 4 => "CLUSTER",
        /// A transactional id.
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        /// A delegation token id.
        DelegationToken = 6 => "DELEGATION_TOKEN",
        /// A user principal.
        User = 7 => "USER",
    }
}

kafka_enum! {
    /// How an ACL's resource name is matched (Kafka's `PatternType`).
    PatternType {
        /// A pattern type this broker does not understand.
        Unknown = 0 => "UNKNOWN",
        /// In a filter: any pattern type, name compared literally.
        Any = 1 => "ANY",
        /// In a filter: every pattern that would match the filter's name.
        Match = 2 => "MATCH",
        /// The exact name, or `*` for every resource of the type.
        Literal = 3 => "LITERAL",
        /// Every resource whose name starts with the pattern's name.
        Prefixed = 4 => "PREFIXED",
    }
}

kafka_enum! {
    /// An operation an ACL allows or denies (Kafka's `AclOperation`).
    AclOperation {
        /// An operation this broker does not understand.
        Unknown = 0 => "UNKNOWN",
        /// In a filter: any operation.
        Any = 1 => "ANY",
        /// Every operation.
        All = 2 => "ALL",
        /// Read (fetch, consume, commit offsets).
        Read = 3 => "READ",
        /// Write (produce).
        Write = 4 => "WRITE",
        /// Create.
        Create = 5 => "CREATE",
        /// Delete.
        Delete = 6 => "DELETE",
        /// Alter.
        Alter = 7 => "ALTER",
        /// Describe.
        Describe = 8 => "DESCRIBE",
        /// Inter-broker cluster actions.
        ClusterAction = 9 => "CLUSTER_ACTION",
        /// Describe configs.
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        /// Alter configs.
        AlterConfigs = 11 => "ALTER_CONFIGS",
        /// Idempotent produce.
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        /// Create delegation tokens.
        CreateTokens = 13 => "CREATE_TOKENS",
        /// Describe delegation tokens.
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
    }
}

kafka_enum! {
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`).
    AclPermission {
        /// A permission type this broker does not understand.
        Unknown = 0 => "UNKNOWN",
        /// In a filter: any permission type.
        Any = 1 => "ANY",
        /// The ACL denies the operation.
        Deny = 2 => "DENY",
        /// The ACL allows the operation.
        Allow = 3 => "ALLOW",
    }
}

/// A validation failure, with the Kafka error code and message a response
/// carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    /// Kafka error code; every ACL validation failure is [`INVALID_REQUEST`].
    pub error_code: i16,
    /// The message Kafka gives for the failure.
    pub message: String,
}

impl AclError {
    fn invalid_request(message: impl Into<String>) -> Self {
        AclError { error_code: INVALID_REQUEST, message: message.into() }
    }
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AclError {}

/// One concrete ACL: who (`principal` from `host`) may or may not
/// (`permission`) do what (`operation`) on which resources (`resource_type`,
/// `resource_name`, `pattern_type`).
///
/// Ordering and equality cover every field, so a set of bindings has no
/// duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The type of resource protected.
    pub resource_type: ResourceType,
    /// The resource name, prefix, or `*`.
    pub resource_name: String,
    /// How `resource_name` is matched: [`PatternType::Literal`] or
    /// [`PatternType::Prefixed`].
    pub pattern_type: PatternType,
    /// The principal, `Type:name` (e.g. `User:alice`, or `User:*` for all).
    pub principal: String,
    /// The client host address, or `*` for all hosts.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl AclBinding {
    /// Checks the binding as a CreateAcls request would.
    ///
    /// In order: no `UNKNOWN`/`ANY` resource type, operation or permission
    /// and a `LITERAL` or `PREFIXED` pattern type (Kafka:
    /// `Invalid resourceType ANY`, ...); a [`ResourceType::Cluster`] resource
    /// must be named `kafka-cluster`; the resource name must not be empty;
    /// the principal must be `Type:name`. Every failure is `INVALID_REQUEST`.
    ///
    /// Kafka's broker only checks the principal when it authorizes (an ACL
    /// without a colon then fails every request touching its resource); it
    /// is refused here up front instead.
    pub fn validate(&self) -> Result<(), AclError> {
        match self.resource_type {
            ResourceType::Unknown | ResourceType::Any => {
                return Err(AclError::invalid_request(format!("Invalid resourceType {}", self.resource_type)))
            }
            _ => {}
        }
        match self.pattern_type {
            PatternType::Literal | PatternType::Prefixed => {}
            _ => return Err(AclError::invalid_request(format!("Invalid patternType {}", self.pattern_type))),
        }
        match self.operation {
            AclOperation::Unknown | AclOperation::Any => {
                return Err(AclError::invalid_request(format!("Invalid operation {}", self.operation)))
            }
            _ => {}
        }
        match self.permission {
            AclPermission::Allow | AclPermission::Deny => {}
            _ => return Err(AclError::invalid_request(format!("Invalid permissionType {}", self.permission))),
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_RESOURCE_NAME {
            return Err(AclError::invalid_request(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            )));
        }
        if self.resource_name.is_empty() {
            return Err(AclError::invalid_request("Invalid empty resource name"));
        }
        if !self.principal.contains(':') {
            return Err(AclError::invalid_request(format!(
                "Could not parse principal from `{}` (no colon is present separating the \
                 principal type from the principal name)",
                self.principal
            )));
        }
        Ok(())
    }

    /// A filter matching exactly this binding.
    pub fn to_filter(&self) -> AclFilter {
        AclFilter {
            resource_type: self.resource_type,
            resource_name: Some(self.resource_name.clone()),
            pattern_type: self.pattern_type,
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: self.operation,
            permission: self.permission,
        }
    }

    /// True when every enum field holds a value a stored ACL can have.
    fn is_concrete(&self) -> bool {
        !matches!(self.resource_type, ResourceType::Unknown | ResourceType::Any)
            && matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed)
            && !matches!(self.operation, AclOperation::Unknown | AclOperation::Any)
            && matches!(self.permission, AclPermission::Allow | AclPermission::Deny)
    }
}

impl fmt::Display for AclBinding {
    /// Kafka's `AclBinding.toString()` layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(pattern=ResourcePattern(resourceType={}, name={}, patternType={}), \
             entry=(principal={}, host={}, operation={}, permissionType={}))",
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }
}

/// Kafka's `AclBindingFilter`: selects bindings for DescribeAcls and
/// DeleteAcls. `None` strings and `ANY` enums match everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclFilter {
    /// The resource type, or [`ResourceType::Any`].
    pub resource_type: ResourceType,
    /// The resource name; `None` matches every name.
    pub resource_name: Option<String>,
    /// [`PatternType::Any`], [`PatternType::Match`], `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// The exact principal string; `None` matches every principal.
    pub principal: Option<String>,
    /// The exact host string; `None` matches every host.
    pub host: Option<String>,
    /// The operation, or [`AclOperation::Any`].
    pub operation: AclOperation,
    /// The permission, or [`AclPermission::Any`].
    pub permission: AclPermission,
}

impl AclFilter {
    /// The filter matching every binding.
    pub const ANY: AclFilter = AclFilter {
        resource_type: ResourceType::Any,
        resource_name: None,
        pattern_type: PatternType::Any,
        principal: None,
        host: None,
        operation: AclOperation::Any,
        permission: AclPermission::Any,
    };

    /// Whether `binding` passes this filter, with Kafka's semantics.
    ///
    /// Resource part (`ResourcePatternFilter.matches`): the type must be
    /// equal unless the filter's is `ANY`. With pattern type `ANY`, a
    /// concrete type, or no name, the pattern type must be equal (unless
    /// `ANY`/`MATCH`) and the name equal (unless `None`). With `MATCH` and a
    /// name, a `LITERAL` binding matches when its name equals the filter's
    /// or is `*`, and a `PREFIXED` binding when the filter's name starts
    /// with its prefix.
    ///
    /// Entry part (`AccessControlEntryFilter.matches`): principal and host
    /// compared as exact strings unless `None` (a `*` in the filter matches
    /// only a `*` binding), operation and permission equal unless `ANY`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        if self.pattern_type != PatternType::Any
            && self.pattern_type != PatternType::Match
            && self.pattern_type != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == binding.pattern_type {
            return *name == binding.resource_name;
        }
        // Only MATCH reaches this point.
        match binding.pattern_type {
            PatternType::Literal => *name == binding.resource_name || binding.resource_name == WILDCARD_RESOURCE,
            PatternType::Prefixed => name.starts_with(binding.resource_name.as_str()),
            // Kafka throws here; a binding with such a pattern type cannot be
            // stored, so it simply does not match.
            _ => false,
        }
    }

    fn matches_entry(&self, binding: &AclBinding) -> bool {
        if let Some(principal) = &self.principal {
            if *principal != binding.principal {
                return false;
            }
        }
        if let Some(host) = &self.host {
            if *host != binding.host {
                return false;
            }
        }
        if self.operation != AclOperation::Any && self.operation != binding.operation {
            return false;
        }
        self.permission == AclPermission::Any || self.permission == binding.permission
    }

    fn unknown_field(&self) -> Option<&'static str> {
        if self.resource_type == ResourceType::Unknown {
            Some("resource type")
        } else if self.pattern_type == PatternType::Unknown {
            Some("pattern type")
        } else if self.operation == AclOperation::Unknown {
            Some("operation")
        } else if self.permission == AclPermission::Unknown {
            Some("permission type")
        } else {
            None
        }
    }

    /// Checks a DescribeAcls filter: Kafka refuses a request whose filter
    /// has any `UNKNOWN` resource type, pattern type, operation or
    /// permission type.
    pub fn validate_for_describe(&self) -> Result<(), AclError> {
        match self.unknown_field() {
            None => Ok(()),
            Some(field) => Err(AclError::invalid_request(format!(
                "DescribeAclsRequest contains UNKNOWN elements ({field}): {self}"
            ))),
        }
    }

    /// Checks a DeleteAcls filter: Kafka refuses a filter with any `UNKNOWN`
    /// resource type, pattern type, operation or permission type.
    pub fn validate_for_delete(&self) -> Result<(), AclError> {
        let pattern_unknown = self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown;
        let entry_unknown = self.operation == AclOperation::Unknown || self.permission == AclPermission::Unknown;
        if pattern_unknown {
            Err(AclError::invalid_request("Unknown patternFilter."))
        } else if entry_unknown {
            Err(AclError::invalid_request("Unknown entryFilter."))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for AclFilter {
    /// Kafka's `AclBindingFilter.toString()` layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(patternFilter=ResourcePattern(resourceType={}, name={}, patternType={}), \
             entryFilter=(principal={}, host={}, operation={}, permissionType={}))",
            self.resource_type,
            self.resource_name.as_deref().unwrap_or("<any>"),
            self.pattern_type,
            self.principal.as_deref().unwrap_or("<any>"),
            self.host.as_deref().unwrap_or("<any>"),
            self.operation,
            self.permission
        )
    }
}

/// The durable set of ACL bindings: no duplicates, iterated in a stable
/// order (by resource type, name, pattern type, principal, host, operation,
/// permission).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acls {
    bindings: BTreeSet<AclBinding>,
}

impl Acls {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `binding`; false if it was already present. Does not validate:
    /// call [`AclBinding::validate`] first.
    pub fn add(&mut self, binding: AclBinding) -> bool {
        self.bindings.insert(binding)
    }

    /// Removes one exact binding; false if it was absent.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        self.bindings.remove(binding)
    }

    /// Whether `binding` is present.
    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.bindings.contains(binding)
    }

    /// Removes every binding `filter` matches and returns them, in set order.
    pub fn remove_matching(&mut self, filter: &AclFilter) -> Vec<AclBinding> {
        let mut removed = Vec::new();
        self.bindings.retain(|binding| {
            if filter.matches(binding) {
                removed.push(binding.clone());
                false
            } else {
                true
            }
        });
        removed
    }

    /// Every binding `filter` matches, in set order.
    pub fn matching(&self, filter: &AclFilter) -> Vec<&AclBinding> {
        self.bindings.iter().filter(|b| filter.matches(b)).collect()
    }

    /// The number of bindings.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether there are no bindings.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Every binding, in set order.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> + '_ {
        self.bindings.iter()
    }

    /// The whole set as text: one [`encode_line`] per binding, each ending
    /// in `\n`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for binding in &self.bindings {
            out.push_str(&encode_line(binding));
            out.push('\n');
        }
        out
    }

    /// Parses [`Acls::to_text`]'s output; blank lines are skipped. The error
    /// names the 1-based line that failed.
    pub fn from_text(text: &str) -> Result<Acls, String> {
        let mut acls = Acls::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let binding = decode_line(line).map_err(|e| format!("line {}: {e}", index + 1))?;
            acls.add(binding);
        }
        Ok(acls)
    }
}

impl FromIterator<AclBinding> for Acls {
    fn from_iter<I: IntoIterator<Item = AclBinding>>(iter: I) -> Self {
        Acls { bindings: iter.into_iter().collect() }
    }
}

impl Extend<AclBinding> for Acls {
    fn extend<I: IntoIterator<Item = AclBinding>>(&mut self, iter: I) {
        self.bindings.extend(iter);
    }
}

impl<'a> IntoIterator for &'a Acls {
    type Item = &'a AclBinding;
    type IntoIter = std::collections::btree_set::Iter<'a, AclBinding>;

    fn into_iter(self) -> Self::IntoIter {
        self.bindings.iter()
    }
}

/// Encodes one binding as a single line (no line terminator):
///
/// `RESOURCE_TYPE PATTERN_TYPE name principal host OPERATION PERMISSION`
///
/// Fields are separated by one space; enums use Kafka's names; the three
/// strings are percent-encoded (`%`, space, control characters, DEL and
/// every non-ASCII byte become `%XX`), so the line is printable ASCII and
/// any string round-trips, the empty string included.
pub fn encode_line(binding: &AclBinding) -> String {
    let mut out =
        String::with_capacity(48 + binding.resource_name.len() + binding.principal.len() + binding.host.len());
    out.push_str(binding.resource_type.name());
    out.push(' ');
    out.push_str(binding.pattern_type.name());
    out.push(' ');
    percent_encode(&binding.resource_name, &mut out);
    out.push(' ');
    percent_encode(&binding.principal, &mut out);
    out.push(' ');
    percent_encode(&binding.host, &mut out);
    out.push(' ');
    out.push_str(binding.operation.name());
    out.push(' ');
    out.push_str(binding.permission.name());
    out
}

/// Decodes a line written by [`encode_line`] (a trailing `\n` or `\r\n` is
/// ignored). Refuses a wrong field count, bad percent escapes, non-UTF-8
/// strings, unknown names, and enum values no stored ACL can have
/// (`UNKNOWN`, `ANY`, `MATCH`).
pub fn decode_line(line: &str) -> Result<AclBinding, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let fields: Vec<&str> = line.split(' ').collect();
    let [resource_type, pattern_type, name, principal, host, operation, permission] = fields.as_slice() else {
        return Err(format!("expected 7 space-separated fields, found {}", fields.len()));
    };
    let binding = AclBinding {
        resource_type: resource_type.parse()?,
        resource_name: percent_decode(name).map_err(|e| format!("resource name: {e}"))?,
        pattern_type: pattern_type.parse()?,
        principal: percent_decode(principal).map_err(|e| format!("principal: {e}"))?,
        host: percent_decode(host).map_err(|e| format!("host: {e}"))?,
        operation: operation.parse()?,
        permission: permission.parse()?,
    };
    if !binding.is_concrete() {
        return Err(format!("not a concrete ACL: {binding}"));
    }
    Ok(binding)
}

/// Parses Kafka's `super.users` value: `;`-separated principals, each
/// trimmed, empty entries skipped; every entry must be `Type:name`.
pub fn parse_super_users(config: &str) -> Result<Vec<String>, String> {
    let mut users = Vec::new();
    for value in config.split(';') {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if !value.contains(':') {
            return Err(format!("expected a string in format principalType:principalName but got {value}"));
        }
        users.push(value.to_string());
    }
    Ok(users)
}

/// A client address as Kafka's ACLs spell it (Java's
/// `InetAddress.getHostAddress()`): IPv4 dotted quad; IPv6 as eight
/// lower-case hex groups without zero compression (`0:0:0:0:0:0:0:1`);
/// an IPv4-mapped IPv6 address as its IPv4 form. A zone id is not part of
/// the output.
pub fn host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:x}")).collect();
                groups.join(":")
            }
        },
    }
}

/// One ACL entry as the authorizer indexes it, under its resource pattern.
#[derive(Debug, Clone)]
struct Entry {
    principal: Box<str>,
    host: Box<str>,
    operation: AclOperation,
    permission: AclPermission,
}

impl Entry {
    /// `StandardAuthorizerData.findResult`: the permission this entry
    /// decides for the request, or `None` if it does not apply.
    fn decide(&self, principal: &str, host: &str, op: AclOperation) -> Option<AclPermission> {
        if &*self.principal != principal && &*self.principal != WILDCARD_PRINCIPAL {
            return None;
        }
        if &*self.host != WILDCARD_HOST && &*self.host != host {
            return None;
        }
        if self.operation != AclOperation::All {
            if self.permission == AclPermission::Allow {
                let applies = match op {
                    AclOperation::Describe => matches!(
                        self.operation,
                        AclOperation::Describe
                            | AclOperation::Read
                            | AclOperation::Write
                            | AclOperation::Delete
                            | AclOperation::Alter
                    ),
                    AclOperation::DescribeConfigs => {
                        matches!(self.operation, AclOperation::DescribeConfigs | AclOperation::AlterConfigs)
                    }
                    _ => self.operation == op,
                };
                if !applies {
                    return None;
                }
            } else if self.operation != op {
                return None;
            }
        }
        Some(self.permission)
    }

    /// Whether the entry applies to `authorize_by_resource_type`'s request:
    /// principal and host as for [`Entry::decide`], operation equal or ALL
    /// (no implied operations).
    fn applies_exactly(&self, principal: &str, host: &str, op: AclOperation) -> bool {
        (&*self.principal == principal || &*self.principal == WILDCARD_PRINCIPAL)
            && (&*self.host == WILDCARD_HOST || &*self.host == host)
            && (self.operation == op || self.operation == AclOperation::All)
    }
}

/// The ACLs of one resource type, indexed by pattern.
#[derive(Debug, Clone, Default)]
struct TypeIndex {
    /// Literal patterns by exact name (the wildcard under `*`).
    literal: HashMap<String, Vec<Entry>>,
    /// Prefixed patterns, sorted by prefix.
    prefixed: BTreeMap<String, Vec<Entry>>,
}

impl TypeIndex {
    /// Calls `visit` with the entries of every prefixed pattern whose prefix
    /// starts `name`; stops early when `visit` returns false.
    ///
    /// Walks the sorted prefixes from the greatest one not above `name`
    /// downwards, skipping over runs that cannot be prefixes: when a key
    /// shares only `m` leading bytes with `name`, every remaining prefix of
    /// `name` is at most `name[..m]`, so the search resumes there. The
    /// number of steps is bounded by the matches found plus the length of
    /// `name`, each step a `O(log n)` lookup.
    fn for_each_prefix_match(&self, name: &str, mut visit: impl FnMut(&[Entry]) -> bool) {
        let mut upper: Bound<&str> = Bound::Included(name);
        while let Some((key, entries)) = self.prefixed.range::<str, _>((Bound::Unbounded, upper)).next_back() {
            if name.starts_with(key.as_str()) {
                if !visit(entries) {
                    return;
                }
                upper = Bound::Excluded(key.as_str());
            } else {
                let common = key.bytes().zip(name.bytes()).take_while(|(a, b)| a == b).count();
                let mut cut = common;
                while !name.is_char_boundary(cut) {
                    cut -= 1;
                }
                // `key` extends `name[..common]`, so `name[..cut]` < `key`:
                // the walk strictly descends.
                upper = Bound::Included(&name[..cut]);
            }
        }
    }
}

/// The number of resource types, i.e. the length of the per-type index.
const RESOURCE_TYPES: usize = 8;

/// An immutable snapshot that authorizes requests with the rules of Kafka's
/// `StandardAuthorizer`. Build one from [`Acls`] whenever the ACLs or the
/// configuration change; lookups are indexed by resource type and name.
#[derive(Debug, Clone)]
pub struct Authorizer {
    enabled: bool,
    super_users: HashSet<String>,
    allow_everyone_if_no_acl_found: bool,
    types: [TypeIndex; RESOURCE_TYPES],
    acl_count: usize,
}

impl Authorizer {
    /// A snapshot of `acls`. `super_users` are principal strings
    /// (`User:admin`) allowed everything; `allow_everyone_if_no_acl_found`
    /// is Kafka's `allow.everyone.if.no.acl.found`. Bindings that cannot be
    /// stored (`UNKNOWN`/`ANY` values, `MATCH` patterns) are ignored.
    pub fn new(acls: &Acls, super_users: Vec<String>, allow_everyone_if_no_acl_found: bool) -> Self {
        let mut types: [TypeIndex; RESOURCE_TYPES] = Default::default();
        let mut acl_count = 0;
        for binding in acls.iter().filter(|b| b.is_concrete()) {
            let Some(index) = types.get_mut(type_slot(binding.resource_type)) else {
                continue;
            };
            let entry = Entry {
                principal: binding.principal.as_str().into(),
                host: binding.host.as_str().into(),
                operation: binding.operation,
                permission: binding.permission,
            };
            let bucket = if binding.pattern_type == PatternType::Prefixed {
                index.prefixed.entry(binding.resource_name.clone()).or_default()
            } else {
                index.literal.entry(binding.resource_name.clone()).or_default()
            };
            bucket.push(entry);
            acl_count += 1;
        }
        Authorizer {
            enabled: true,
            super_users: super_users.into_iter().collect(),
            allow_everyone_if_no_acl_found,
            types,
            acl_count,
        }
    }

    /// The authorizer of a broker with none configured: every check passes.
    pub fn allow_all() -> Self {
        Authorizer {
            enabled: false,
            super_users: HashSet::new(),
            allow_everyone_if_no_acl_found: true,
            types: Default::default(),
            acl_count: 0,
        }
    }

    /// False for [`Authorizer::allow_all`]: ACL requests should then answer
    /// `SECURITY_DISABLED`.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The number of ACLs indexed.
    pub fn acl_count(&self) -> usize {
        self.acl_count
    }

    /// Whether `principal` (e.g. `User:admin`) is a configured super user.
    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.contains(principal)
    }

    /// May `principal` (`Type:name`) connecting from `host` (see
    /// [`host_address`]) perform `op` on the resource `resource_type`/`name`?
    ///
    /// Kafka's `StandardAuthorizer` rules:
    /// 1. super users may do anything;
    /// 2. the ACLs on the resource are the literal ones named `name` or `*`
    ///    and the prefixed ones whose prefix starts `name`;
    /// 3. one of them applies when its principal is `principal` or `User:*`,
    ///    its host is `host` or `*`, and its operation is `op` or ALL; an
    ///    ALLOW of READ, WRITE, DELETE or ALTER also applies to DESCRIBE, an
    ///    ALLOW of ALTER_CONFIGS to DESCRIBE_CONFIGS (a DENY has no such
    ///    implications);
    /// 4. an applicable DENY denies; else an applicable ALLOW allows;
    /// 5. else, if the resource has no ACLs at all (for any principal, host
    ///    or operation), `allow.everyone.if.no.acl.found` decides; otherwise
    ///    denied.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.contains(principal) {
            return true;
        }
        let Some(index) = self.types.get(type_slot(resource_type)) else {
            return self.allow_everyone_if_no_acl_found;
        };
        let mut has_resource_acls = false;
        let mut allowed = false;
        let mut denied = false;
        let mut visit = |entries: &[Entry]| -> bool {
            for entry in entries {
                has_resource_acls = true;
                match entry.decide(principal, host, op) {
                    Some(AclPermission::Deny) => {
                        denied = true;
                        return false;
                    }
                    Some(AclPermission::Allow) => allowed = true,
                    _ => {}
                }
            }
            true
        };
        let mut go_on = true;
        if let Some(entries) = index.literal.get(name) {
            go_on = visit(entries);
        }
        if go_on && name != WILDCARD_RESOURCE {
            if let Some(entries) = index.literal.get(WILDCARD_RESOURCE) {
                go_on = visit(entries);
            }
        }
        if go_on {
            index.for_each_prefix_match(name, &mut visit);
        }
        if denied {
            false
        } else if allowed {
            true
        } else if has_resource_acls {
            false
        } else {
            self.allow_everyone_if_no_acl_found
        }
    }

    /// May `principal` perform `op` on at least one resource of
    /// `resource_type`? Kafka's `Authorizer.authorizeByResourceType`
    /// (used e.g. for transactional producers without a transactional-id ACL
    /// check, and idempotent writes):
    /// 1. allowed if [`Authorizer::authorize`] allows `op` on a resource
    ///    named `hardcode` (this lets super users, and the no-ACL default,
    ///    through);
    /// 2. considering only ACLs of the type whose principal is `principal`
    ///    or `User:*`, whose host is `host` or `*` and whose operation is
    ///    `op` or ALL (no implied operations): a DENY on literal `*` denies;
    ///    an ALLOW on literal `*` allows;
    /// 3. allowed if some other ALLOW pattern is not dominated by a DENY: a
    ///    literal ALLOW is dominated by a DENY of the same literal name, and
    ///    any ALLOW by a prefixed DENY whose prefix (non-empty) starts the
    ///    ALLOW's name;
    /// 4. otherwise denied.
    ///
    /// `UNKNOWN`/`ANY` operations or resource types are denied (Kafka
    /// throws for them).
    pub fn authorize_by_resource_type(
        &self,
        principal: &str,
        host: &str,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.enabled {
            return true;
        }
        if matches!(op, AclOperation::Unknown | AclOperation::Any)
            || matches!(resource_type, ResourceType::Unknown | ResourceType::Any)
        {
            return false;
        }
        if self.authorize(principal, host, op, resource_type, "hardcode") {
            return true;
        }
        let Some(index) = self.types.get(type_slot(resource_type)) else {
            return false;
        };

        let mut deny_literal: HashSet<&str> = HashSet::new();
        let mut deny_prefixed: HashSet<&str> = HashSet::new();
        let mut allow_names: Vec<(&str, bool)> = Vec::new();
        let mut wildcard_allow = false;
        let literal = index.literal.iter().map(|(name, e)| (name, e, false));
        let prefixed = index.prefixed.iter().map(|(name, e)| (name, e, true));
        for (name, entries, is_prefixed) in literal.chain(prefixed) {
            for entry in entries {
                if !entry.applies_exactly(principal, host, op) {
                    continue;
                }
                let wildcard = !is_prefixed && name == WILDCARD_RESOURCE;
                match entry.permission {
                    AclPermission::Deny => {
                        if wildcard {
                            return false;
                        }
                        if is_prefixed {
                            deny_prefixed.insert(name.as_str());
                        } else {
                            deny_literal.insert(name.as_str());
                        }
                    }
                    AclPermission::Allow => {
                        if wildcard {
                            wildcard_allow = true;
                        } else {
                            allow_names.push((name.as_str(), is_prefixed));
                        }
                    }
                    _ => {}
                }
            }
        }
        if wildcard_allow {
            return true;
        }
        allow_names.iter().any(|&(name, is_prefixed)| {
            if !is_prefixed && deny_literal.contains(name) {
                return false;
            }
            let dominated = name
                .char_indices()
                .map(|(i, c)| &name[..i + c.len_utf8()])
                .any(|prefix| deny_prefixed.contains(prefix));
            !dominated
        })
    }
}

/// The index slot of a resource type: its wire code.
fn type_slot(resource_type: ResourceType) -> usize {
    usize::try_from(resource_type.code()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        host: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        }
    }

    fn topic_acl(
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        binding(ResourceType::Topic, name, pattern_type, principal, "*", operation, permission)
    }

    use AclOperation as Op;
    use AclPermission::{Allow, Deny};
    use PatternType::{Literal, Prefixed};

    fn authorizer(bindings: Vec<AclBinding>, allow_everyone: bool) -> Authorizer {
        Authorizer::new(&bindings.into_iter().collect(), vec!["User:admin".to_string()], allow_everyone)
    }

    #[test]
    fn codes_and_names_round_trip() {
        for v in ResourceType::VALUES {
            assert_eq!(ResourceType::from_code(v.code()), Some(*v));
            assert_eq!(v.name().parse::<ResourceType>(), Ok(*v));
        }
        for v in PatternType::VALUES {
            assert_eq!(PatternType::from_code(v.code()), Some(*v));
            assert_eq!(v.to_string().parse::<PatternType>(), Ok(*v));
        }
        for v in AclOperation::VALUES {
            assert_eq!(AclOperation::from_code(v.code()), Some(*v));
            assert_eq!(v.name().parse::<AclOperation>(), Ok(*v));
        }
        for v in AclPermission::VALUES {
            assert_eq!(AclPermission::from_code(v.code()), Some(*v));
            assert_eq!(v.name().parse::<AclPermission>(), Ok(*v));
        }
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(ResourceType::User.code(), 7);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::DescribeTokens.code(), 14);
        assert_eq!(AclOperation::IdempotentWrite.name(), "IDEMPOTENT_WRITE");
        assert_eq!(AclPermission::Allow.code(), 3);
        assert_eq!(ResourceType::from_code(8), None);
        assert_eq!(AclOperation::from_code(-1), None);
        assert_eq!(AclOperation::from_code(15), None);
        assert_eq!("describe_configs".parse(), Ok(AclOperation::DescribeConfigs));
        assert!("READS".parse::<AclOperation>().is_err());
    }

    #[test]
    fn validate_follows_create_acls_rules() {
        let good = topic_acl("orders", Literal, "User:alice", Op::Read, Allow);
        assert_eq!(good.validate(), Ok(()));
        let wildcard = topic_acl("*", Literal, "User:*", Op::All, Deny);
        assert_eq!(wildcard.validate(), Ok(()));
        let prefixed_star = topic_acl("*", Prefixed, "User:bob", Op::Write, Allow);
        assert_eq!(prefixed_star.validate(), Ok(()));
        let empty_principal_name = topic_acl("t", Literal, "User:", Op::Read, Allow);
        assert_eq!(empty_principal_name.validate(), Ok(()));

        let err = |b: AclBinding| b.validate().unwrap_err();
        let e = err(AclBinding { resource_type: ResourceType::Any, ..good.clone() });
        assert_eq!(e.error_code, INVALID_REQUEST);
        assert_eq!(e.message, "Invalid resourceType ANY");
        let e = err(AclBinding { pattern_type: PatternType::Match, ..good.clone() });
        assert_eq!(e.message, "Invalid patternType MATCH");
        let e = err(AclBinding { operation: Op::Unknown, ..good.clone() });
        assert_eq!(e.message, "Invalid operation UNKNOWN");
        let e = err(AclBinding { permission: AclPermission::Any, ..good.clone() });
        assert_eq!(e.message, "Invalid permissionType ANY");
        let e = err(AclBinding { resource_name: String::new(), ..good.clone() });
        assert_eq!(e.message, "Invalid empty resource name");
        let e = err(AclBinding { principal: "alice".into(), ..good.clone() });
        assert!(e.message.starts_with("Could not parse principal from `alice`"));
        assert_eq!(e.error_code, INVALID_REQUEST);

        let cluster = binding(ResourceType::Cluster, "kafka-cluster", Literal, "User:a", "*", Op::ClusterAction, Allow);
        assert_eq!(cluster.validate(), Ok(()));
        let e = err(AclBinding { resource_name: "other".into(), ..cluster });
        assert_eq!(e.message, "The only valid name for the CLUSTER resource is kafka-cluster");
    }

    #[test]
    fn filter_literal_prefixed_any_and_match() {
        let lit = topic_acl("payments.received", Literal, "User:a", Op::Read, Allow);
        let wild = topic_acl("*", Literal, "User:a", Op::Read, Allow);
        let pre = topic_acl("payments.", Prefixed, "User:a", Op::Read, Allow);
        let other_pre = topic_acl("pay.", Prefixed, "User:a", Op::Read, Allow);
        let group = binding(ResourceType::Group, "payments.received", Literal, "User:a", "*", Op::Read, Allow);
        let filter = |pattern_type, name: Option<&str>| AclFilter {
            resource_type: ResourceType::Topic,
            resource_name: name.map(str::to_string),
            pattern_type,
            ..AclFilter::ANY
        };

        let m = filter(PatternType::Match, Some("payments.received"));
        assert!(m.matches(&lit));
        assert!(m.matches(&wild));
        assert!(m.matches(&pre));
        assert!(!m.matches(&other_pre));
        assert!(!m.matches(&group));

        let any = filter(PatternType::Any, Some("payments.received"));
        assert!(any.matches(&lit));
        assert!(!any.matches(&wild));
        assert!(!any.matches(&pre));

        let literal = filter(Literal, Some("payments."));
        assert!(!literal.matches(&pre));
        let prefixed = filter(Prefixed, Some("payments."));
        assert!(prefixed.matches(&pre));
        assert!(!prefixed.matches(&lit));

        // No name: pattern type still applies, except for ANY and MATCH.
        assert!(filter(Prefixed, None).matches(&pre));
        assert!(!filter(Prefixed, None).matches(&lit));
        assert!(filter(PatternType::Match, None).matches(&lit));

        // A `*` filter name is literal: it finds only wildcard bindings.
        assert!(filter(Literal, Some("*")).matches(&wild));
        assert!(!filter(Literal, Some("*")).matches(&lit));

        assert!(AclFilter::ANY.matches(&group));
    }

    #[test]
    fn filter_entry_fields_are_exact() {
        let b = binding(ResourceType::Topic, "t", Literal, "User:alice", "10.0.0.1", Op::Write, Deny);
        let with = |f: AclFilter| f.matches(&b);
        assert!(with(AclFilter {
            principal: Some("User:alice".into()),
            host: Some("10.0.0.1".into()),
            operation: Op::Write,
            permission: Deny,
            ..AclFilter::ANY
        }));
        assert!(!with(AclFilter { principal: Some("User:*".into()), ..AclFilter::ANY }));
        assert!(!with(AclFilter { host: Some("*".into()), ..AclFilter::ANY }));
        assert!(!with(AclFilter { operation: Op::All, ..AclFilter::ANY }));
        assert!(!with(AclFilter { permission: Allow, ..AclFilter::ANY }));
        assert!(b.to_filter().matches(&b));
    }

    #[test]
    fn filter_validation() {
        assert_eq!(AclFilter::ANY.validate_for_describe(), Ok(()));
        assert_eq!(AclFilter::ANY.validate_for_delete(), Ok(()));
        let unknown_pattern = AclFilter { pattern_type: PatternType::Unknown, ..AclFilter::ANY };
        assert_eq!(unknown_pattern.validate_for_delete().unwrap_err().message, "Unknown patternFilter.");
        assert_eq!(unknown_pattern.validate_for_describe().unwrap_err().error_code, INVALID_REQUEST);
        let unknown_op = AclFilter { operation: Op::Unknown, ..AclFilter::ANY };
        assert_eq!(unknown_op.validate_for_delete().unwrap_err().message, "Unknown entryFilter.");
        assert!(unknown_op.validate_for_describe().is_err());
    }

    #[test]
    fn acls_set_semantics() {
        let mut acls = Acls::new();
        let a = topic_acl("a", Literal, "User:x", Op::Read, Allow);
        let b = topic_acl("b", Prefixed, "User:x", Op::Write, Allow);
        let c = topic_acl("a", Literal, "User:y", Op::Read, Deny);
        assert!(acls.add(a.clone()));
        assert!(!acls.add(a.clone()));
        assert!(acls.add(b.clone()));
        assert!(acls.add(c.clone()));
        assert_eq!(acls.len(), 3);
        let named_a = AclFilter { resource_name: Some("a".into()), ..AclFilter::ANY };
        assert_eq!(acls.matching(&named_a), vec![&a, &c]);
        assert_eq!(acls.remove_matching(&named_a), vec![a.clone(), c]);
        assert_eq!(acls.len(), 1);
        assert!(acls.contains(&b));
        assert!(!acls.contains(&a));
        assert!(acls.remove(&b));
        assert!(acls.is_empty());
    }

    #[test]
    fn line_encoding_round_trips_awkward_strings() {
        let names = [
            "plain",
            "group with spaces",
            "%percent%25",
            "tab\there\nnewline\r",
            "ünïcødé 组 🚀",
            "",
            " leading and trailing ",
            "a\u{0}nul",
            "*",
        ];
        let mut acls = Acls::new();
        for (i, name) in names.iter().enumerate() {
            let b = binding(
                ResourceType::Group,
                name,
                if i % 2 == 0 { Literal } else { Prefixed },
                &format!("User:{name}"),
                name,
                Op::Describe,
                Allow,
            );
            let line = encode_line(&b);
            assert!(line.bytes().all(|c| c == b' ' || c.is_ascii_graphic()), "{line}");
            assert_eq!(line.split(' ').count(), 7, "{line}");
            assert_eq!(decode_line(&line), Ok(b.clone()));
            assert_eq!(decode_line(&format!("{line}\r\n")), Ok(b.clone()));
            acls.add(b);
        }
        assert_eq!(Acls::from_text(&acls.to_text()), Ok(acls.clone()));
        let b = topic_acl("a b", Literal, "User:x", Op::IdempotentWrite, Deny);
        assert_eq!(encode_line(&b), "TOPIC LITERAL a%20b User:x * IDEMPOTENT_WRITE DENY");
    }

    #[test]
    fn line_decoding_refuses_garbage() {
        let bad = [
            "",
            "TOPIC LITERAL a User:x * READ",
            "TOPIC LITERAL a User:x * READ ALLOW extra",
            "TOPIC LITERAL a%2 User:x * READ ALLOW",
            "TOPIC LITERAL a%zz User:x * READ ALLOW",
            "TOPIC LITERAL %FF User:x * READ ALLOW",
            "TOPIC LITERAL a\tb User:x * READ ALLOW",
            "TOPIX LITERAL a User:x * READ ALLOW",
            "TOPIC MATCH a User:x * READ ALLOW",
            "ANY LITERAL a User:x * READ ALLOW",
            "TOPIC LITERAL a User:x * ANY ALLOW",
            "TOPIC LITERAL a User:x * READ UNKNOWN",
            "TOPIC  LITERAL a User:x * READ ALLOW",
        ];
        for line in bad {
            assert!(decode_line(line).is_err(), "{line:?}");
        }
        let err = Acls::from_text("TOPIC LITERAL a User:x * READ ALLOW\nnope\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn super_users_and_allow_all() {
        let az = authorizer(vec![topic_acl("t", Literal, "User:*", Op::All, Deny)], false);
        assert!(az.is_super_user("User:admin"));
        assert!(!az.is_super_user("User:alice"));
        assert!(az.authorize("User:admin", "h", Op::Write, ResourceType::Topic, "t"));
        assert!(!az.authorize("User:alice", "h", Op::Write, ResourceType::Topic, "t"));
        assert!(az.authorize_by_resource_type("User:admin", "h", Op::Write, ResourceType::Topic));

        let open = Authorizer::allow_all();
        assert!(!open.is_enabled());
        assert!(open.authorize("User:x", "h", Op::Alter, ResourceType::Cluster, "kafka-cluster"));
        assert!(open.authorize_by_resource_type("User:x", "h", Op::Write, ResourceType::Topic));
        assert_eq!(parse_super_users(" User:a ;; User:b;"), Ok(vec!["User:a".to_string(), "User:b".to_string()]));
        assert!(parse_super_users("User:a;bob").is_err());
    }

    #[test]
    fn deny_beats_allow_and_implications_are_allow_only() {
        let az = authorizer(
            vec![
                topic_acl("t", Literal, "User:alice", Op::All, Allow),
                topic_acl("t", Literal, "User:alice", Op::Write, Deny),
                topic_acl("u", Literal, "User:alice", Op::Read, Deny),
                topic_acl("u", Literal, "User:alice", Op::Describe, Allow),
                topic_acl("v", Literal, "User:alice", Op::Read, Allow),
                topic_acl("w", Literal, "User:alice", Op::AlterConfigs, Allow),
                topic_acl("x", Literal, "User:alice", Op::Describe, Allow),
            ],
            false,
        );
        let can = |op, name| az.authorize("User:alice", "1.2.3.4", op, ResourceType::Topic, name);
        assert!(can(Op::Read, "t"));
        assert!(!can(Op::Write, "t"));
        // DENY READ does not deny DESCRIBE.
        assert!(!can(Op::Read, "u"));
        assert!(can(Op::Describe, "u"));
        // ALLOW READ implies DESCRIBE but nothing else.
        assert!(can(Op::Describe, "v"));
        assert!(!can(Op::DescribeConfigs, "v"));
        assert!(!can(Op::Write, "v"));
        // ALLOW ALTER_CONFIGS implies DESCRIBE_CONFIGS, not DESCRIBE.
        assert!(can(Op::DescribeConfigs, "w"));
        assert!(!can(Op::Describe, "w"));
        // DESCRIBE does not imply READ.
        assert!(!can(Op::Read, "x"));
        for op in [Op::Write, Op::Delete, Op::Alter] {
            let az = authorizer(vec![topic_acl("t", Literal, "User:a", op, Allow)], false);
            assert!(az.authorize("User:a", "h", Op::Describe, ResourceType::Topic, "t"));
        }
        for op in [Op::Create, Op::ClusterAction, Op::IdempotentWrite] {
            let az = authorizer(vec![topic_acl("t", Literal, "User:a", op, Allow)], false);
            assert!(!az.authorize("User:a", "h", Op::Describe, ResourceType::Topic, "t"));
        }
    }

    #[test]
    fn wildcard_principal_host_and_resource() {
        let az = authorizer(
            vec![
                binding(ResourceType::Topic, "t", Literal, "User:*", "10.0.0.1", Op::Read, Allow),
                binding(ResourceType::Topic, "*", Literal, "User:bob", "*", Op::Write, Allow),
                binding(ResourceType::Topic, "t", Literal, "Group:*", "*", Op::Delete, Allow),
            ],
            false,
        );
        let can = |p, h, op, name| az.authorize(p, h, op, ResourceType::Topic, name);
        assert!(can("User:anyone", "10.0.0.1", Op::Read, "t"));
        assert!(!can("User:anyone", "10.0.0.2", Op::Read, "t"));
        assert!(can("User:bob", "10.9.9.9", Op::Write, "whatever"));
        assert!(can("User:bob", "10.9.9.9", Op::Write, "t"));
        assert!(!can("User:carol", "10.9.9.9", Op::Write, "whatever"));
        // Only `User:*` is a wildcard principal.
        assert!(!can("Group:x", "h", Op::Delete, "t"));
        assert!(can("Group:*", "h", Op::Delete, "t"));
        // A wildcard resource ACL is only a wildcard for its type.
        assert!(!az.authorize("User:bob", "h", Op::Write, ResourceType::Group, "t"));
    }

    #[test]
    fn prefixed_patterns() {
        let az = authorizer(
            vec![
                topic_acl("pay", Prefixed, "User:a", Op::Read, Allow),
                topic_acl("payments.secret", Prefixed, "User:a", Op::Read, Deny),
                topic_acl("paz", Literal, "User:a", Op::Read, Allow),
                topic_acl("pa", Literal, "User:a", Op::Read, Allow),
                topic_acl("é", Prefixed, "User:a", Op::Write, Allow),
            ],
            false,
        );
        let can = |op, name| az.authorize("User:a", "h", op, ResourceType::Topic, name);
        assert!(can(Op::Read, "pay"));
        assert!(can(Op::Read, "payments"));
        assert!(can(Op::Read, "payments.secre"));
        assert!(!can(Op::Read, "payments.secret"));
        assert!(!can(Op::Read, "payments.secret.x"));
        assert!(can(Op::Read, "paz"));
        assert!(!can(Op::Read, "pazz"));
        assert!(!can(Op::Read, "pb"));
        assert!(!can(Op::Read, "p"));
        assert!(can(Op::Write, "été"));
        assert!(!can(Op::Write, "e"));
    }

    #[test]
    fn allow_everyone_flag_applies_only_to_resources_without_acls() {
        let acls = vec![topic_acl("guarded", Literal, "User:other", Op::Write, Allow)];
        for allow_everyone in [false, true] {
            let az = authorizer(acls.clone(), allow_everyone);
            // ACLs exist for the resource (for someone else, another op): denied.
            assert!(!az.authorize("User:me", "h", Op::Read, ResourceType::Topic, "guarded"));
            // No ACL on the resource: the flag decides.
            assert_eq!(az.authorize("User:me", "h", Op::Read, ResourceType::Topic, "open"), allow_everyone);
            assert_eq!(az.authorize("User:me", "h", Op::Read, ResourceType::Group, "guarded"), allow_everyone);
        }
        // A prefixed ACL covering the resource counts as an ACL on it.
        let az = authorizer(vec![topic_acl("gu", Prefixed, "User:x", Op::Read, Allow)], true);
        assert!(!az.authorize("User:me", "h", Op::Read, ResourceType::Topic, "guarded"));
        assert!(az.authorize("User:me", "h", Op::Read, ResourceType::Topic, "other"));
        let empty = authorizer(vec![], true);
        assert!(empty.authorize("User:me", "h", Op::Alter, ResourceType::Cluster, "kafka-cluster"));
    }

    /// Brute force version of `authorize` to compare the index against.
    fn reference_authorize(
        bindings: &[AclBinding],
        principal: &str,
        host: &str,
        op: AclOperation,
        rt: ResourceType,
        name: &str,
    ) -> Option<bool> {
        let mut found = false;
        let mut allow = false;
        for b in bindings.iter().filter(|b| b.resource_type == rt) {
            let on_resource = match b.pattern_type {
                Literal => b.resource_name == name || b.resource_name == "*",
                Prefixed => name.starts_with(b.resource_name.as_str()),
                _ => false,
            };
            if !on_resource {
                continue;
            }
            found = true;
            let entry = Entry {
                principal: b.principal.as_str().into(),
                host: b.host.as_str().into(),
                operation: b.operation,
                permission: b.permission,
            };
            match entry.decide(principal, host, op) {
                Some(Deny) => return Some(false),
                Some(Allow) => allow = true,
                _ => {}
            }
        }
        if allow {
            Some(true)
        } else if found {
            Some(false)
        } else {
            None
        }
    }

    #[test]
    fn index_agrees_with_brute_force() {
        // Deterministic xorshift so the test needs no dependencies.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let alphabet = ["a", "b", "ab", "é", "*", "ba", ""];
        let ops = [Op::All, Op::Read, Op::Write, Op::Describe, Op::AlterConfigs];
        let word = |next: &mut dyn FnMut(usize) -> usize, max: usize| {
            let len = next(max + 1);
            (0..len).map(|_| alphabet[next(alphabet.len())]).collect::<String>()
        };
        for round in 0..300 {
            let count = next(12);
            let mut bindings = Vec::new();
            for _ in 0..count {
                let name = word(&mut next, 4);
                bindings.push(binding(
                    ResourceType::Topic,
                    &name,
                    if next(2) == 0 { Literal } else { Prefixed },
                    ["User:a", "User:*", "User:b"][next(3)],
                    ["*", "h1"][next(2)],
                    ops[next(ops.len())],
                    if next(3) == 0 { Deny } else { Allow },
                ));
            }
            let allow_everyone = round % 2 == 0;
            let az = authorizer(bindings.clone(), allow_everyone);
            for _ in 0..40 {
                let name = word(&mut next, 5);
                let principal = ["User:a", "User:b", "User:c"][next(3)];
                let host = ["h1", "h2"][next(2)];
                let op = [Op::Read, Op::Write, Op::Describe, Op::DescribeConfigs][next(4)];
                let expected = reference_authorize(&bindings, principal, host, op, ResourceType::Topic, &name)
                    .unwrap_or(allow_everyone);
                assert_eq!(
                    az.authorize(principal, host, op, ResourceType::Topic, &name),
                    expected,
                    "{principal} {host} {op} {name:?} with {bindings:#?}"
                );
            }
        }
    }

    #[test]
    fn authorize_by_resource_type_semantics() {
        let rt = ResourceType::TransactionalId;
        let acl = |name: &str, pattern_type, principal: &str, op, permission| {
            binding(rt, name, pattern_type, principal, "*", op, permission)
        };
        let check = |bindings: Vec<AclBinding>, allow_everyone: bool| {
            authorizer(bindings, allow_everyone).authorize_by_resource_type("User:p", "h", Op::Write, rt)
        };
        // Nothing at all: the `hardcode` probe falls back to the flag.
        assert!(!check(vec![], false));
        assert!(check(vec![], true));
        // An allow on some id.
        assert!(check(vec![acl("tx-1", Literal, "User:p", Op::Write, Allow)], false));
        // Implied operations do not count here.
        assert!(!check(vec![acl("tx-1", Literal, "User:p", Op::Read, Allow)], false));
        assert!(check(vec![acl("tx-1", Literal, "User:p", Op::All, Allow)], false));
        // Wildcard principal counts; other principals and hosts do not.
        assert!(check(vec![acl("tx-1", Literal, "User:*", Op::Write, Allow)], false));
        assert!(!check(vec![acl("tx-1", Literal, "User:q", Op::Write, Allow)], false));
        assert!(!check(vec![binding(rt, "tx", Literal, "User:p", "other", Op::Write, Allow)], false));
        // A literal deny of the same name dominates a literal allow.
        assert!(!check(
            vec![acl("tx-1", Literal, "User:p", Op::Write, Allow), acl("tx-1", Literal, "User:p", Op::Write, Deny),],
            false
        ));
        // A prefixed deny dominates allows under its prefix, literal or prefixed.
        assert!(!check(
            vec![
                acl("tx-1", Literal, "User:p", Op::Write, Allow),
                acl("tx-2", Prefixed, "User:p", Op::Write, Allow),
                acl("tx", Prefixed, "User:*", Op::All, Deny),
            ],
            false
        ));
        // ... but not allows outside it.
        assert!(check(
            vec![
                acl("tx-1", Literal, "User:p", Op::Write, Allow),
                acl("ty", Prefixed, "User:p", Op::Write, Allow),
                acl("tx", Prefixed, "User:p", Op::Write, Deny),
            ],
            false
        ));
        // A literal deny does not dominate a prefixed allow of the same name.
        assert!(check(
            vec![acl("tx", Prefixed, "User:p", Op::Write, Allow), acl("tx", Literal, "User:p", Op::Write, Deny),],
            false
        ));
        // Wildcards: a wildcard deny wins over everything, a wildcard allow
        // over prefixed denies.
        assert!(!check(
            vec![acl("*", Literal, "User:p", Op::Write, Allow), acl("*", Literal, "User:p", Op::Write, Deny),],
            false
        ));
        assert!(check(
            vec![acl("*", Literal, "User:p", Op::Write, Allow), acl("t", Prefixed, "User:p", Op::Write, Deny),],
            false
        ));
        // A wildcard ACL makes the `hardcode` probe answer first.
        assert!(check(vec![acl("*", Literal, "User:*", Op::Write, Allow)], false));
        // Invalid arguments are denied.
        let az = authorizer(vec![acl("*", Literal, "User:*", Op::All, Allow)], true);
        assert!(!az.authorize_by_resource_type("User:p", "h", Op::Any, rt));
        assert!(!az.authorize_by_resource_type("User:p", "h", Op::Write, ResourceType::Any));
    }

    #[test]
    fn host_address_matches_java() {
        assert_eq!(host_address("10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(host_address("::1".parse().unwrap()), "0:0:0:0:0:0:0:1");
        assert_eq!(host_address("2001:db8::ff00:42:8329".parse().unwrap()), "2001:db8:0:0:0:ff00:42:8329");
        assert_eq!(host_address("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn display_like_kafka() {
        let b = topic_acl("t", Prefixed, "User:a", Op::Read, Allow);
        assert_eq!(
            b.to_string(),
            "(pattern=ResourcePattern(resourceType=TOPIC, name=t, patternType=PREFIXED), \
             entry=(principal=User:a, host=*, operation=READ, permissionType=ALLOW))"
        );
        assert!(AclFilter::ANY.to_string().contains("name=<any>"));
    }
}

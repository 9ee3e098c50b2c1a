//! Who a client is and what it may do: principals and the mapping of TLS
//! certificate subjects to them ([`principal`]), Kafka's ACL model and the
//! StandardAuthorizer's rules ([`acl`]), and the SASL mechanisms ([`plain`],
//! [`scram`]), and TLS server settings from PEM files ([`tls`]). Plain types with no I/O
//! besides reading certificate files: the controller stores what they hold,
//! every shard checks against an immutable snapshot.

pub mod acl;
pub mod oauthbearer;
pub mod plain;
pub mod principal;
pub mod quota;
pub mod scram;
pub mod store;
mod text;
pub mod tls;

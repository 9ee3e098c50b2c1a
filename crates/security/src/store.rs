//! What the broker stores about security: ACL bindings, SCRAM credentials
//! (salted keys only, never a password) and client quotas, as one immutable
//! state that the controller replaces whole on each change and every shard reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::acl::{decode_line, encode_line, AclBinding, Acls};
use crate::quota::ClientQuotas;
use crate::scram::{ScramCredential, ScramMechanism};
use crate::text::{percent_decode, percent_encode};

const MAGIC: &str = "sluice-security 1";

fn encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    percent_encode(text, &mut out);
    out
}

/// ACLs, SCRAM users and client quotas, as of one change.
#[derive(Debug, Clone, Default)]
pub struct SecurityState {
    pub acls: Arc<Acls>,
    /// SCRAM credentials by user name, at most one per mechanism.
    pub scram: BTreeMap<String, Vec<ScramCredential>>,
    /// Quotas by user and client id (`kafka-configs.sh --entity-type users|clients`).
    pub quotas: Arc<ClientQuotas>,
}

impl SecurityState {
    /// The credential `user` logs in with over `mechanism`.
    pub fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.scram.get(user)?.iter().find(|c| c.mechanism == mechanism)
    }

    /// Sets (adds or replaces) a credential.
    pub fn upsert_scram(&mut self, user: &str, credential: ScramCredential) {
        let credentials = self.scram.entry(user.to_string()).or_default();
        credentials.retain(|c| c.mechanism != credential.mechanism);
        credentials.push(credential);
        credentials.sort_by_key(|c| c.mechanism.code());
    }

    /// Removes a credential; whether there was one.
    pub fn delete_scram(&mut self, user: &str, mechanism: ScramMechanism) -> bool {
        let Some(credentials) = self.scram.get_mut(user) else { return false };
        let before = credentials.len();
        credentials.retain(|c| c.mechanism != mechanism);
        let removed = credentials.len() != before;
        if credentials.is_empty() {
            self.scram.remove(user);
        }
        removed
    }

    /// The text this state is stored as: a header line, then one `acl`,
    /// `scram` or `quota` line each. The caller seals it with a checksum.
    pub fn encode(&self) -> String {
        let mut text = format!("{MAGIC}\n");
        for binding in self.acls.iter() {
            text.push_str("acl ");
            text.push_str(&encode_line(binding));
            text.push('\n');
        }
        for (user, credentials) in &self.scram {
            for c in credentials {
                text.push_str(&format!("scram {} {} {}\n", encoded(user), c.mechanism.name(), c.to_text()));
            }
        }
        for line in self.quotas.encode_lines() {
            text.push_str("quota ");
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// Reads what [`SecurityState::encode`] wrote.
    pub fn decode(text: &str) -> Result<SecurityState, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err("not a security state file".into());
        }
        let mut acls = Acls::default();
        let mut quotas = ClientQuotas::default();
        let mut state = SecurityState::default();
        for line in lines {
            match line.split_once(' ') {
                Some(("acl", rest)) => {
                    let binding: AclBinding = decode_line(rest).map_err(|e| format!("bad acl line {line:?}: {e}"))?;
                    acls.add(binding);
                }
                Some(("scram", rest)) => {
                    let mut parts = rest.splitn(3, ' ');
                    let (Some(user), Some(mechanism), Some(credential)) = (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(format!("bad scram line {line:?}"));
                    };
                    let user = percent_decode(user).map_err(|e| format!("bad user in {line:?}: {e}"))?;
                    let mechanism =
                        ScramMechanism::from_name(mechanism).ok_or_else(|| format!("unknown mechanism in {line:?}"))?;
                    let credential = ScramCredential::from_text(mechanism, credential)
                        .map_err(|e| format!("bad credential for {user}: {e:?}"))?;
                    state.upsert_scram(&user, credential);
                }
                Some(("quota", rest)) => {
                    quotas.decode_line(rest).map_err(|e| format!("bad quota line {line:?}: {e}"))?;
                }
                _ => return Err(format!("bad security line {line:?}")),
            }
        }
        state.acls = Arc::new(acls);
        state.quotas = Arc::new(quotas);
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_with_any_name_round_trip() {
        let mut state = SecurityState::default();
        let credential = ScramCredential::from_password(ScramMechanism::Sha256, "pw", 4096).unwrap();
        for user in ["alice", "with space", "100%", "ünï cødé"] {
            state.upsert_scram(user, credential.clone());
        }
        let text = state.encode();
        let back = SecurityState::decode(&text).unwrap();
        assert_eq!(back.scram.len(), 4);
        let found = back.scram_credential("with space", ScramMechanism::Sha256).unwrap();
        assert!(found.verify_password("pw"));
        assert!(!found.verify_password("other"));
        assert!(back.scram_credential("with space", ScramMechanism::Sha512).is_none());
        assert!(!text.contains("pw\n"), "no password is stored");
    }

    #[test]
    fn quotas_round_trip() {
        let mut quotas = ClientQuotas::default();
        let entity = crate::quota::QuotaEntity::user_client_id(Some("a b"), None);
        quotas.alter(&entity, &[("producer_byte_rate", Some(1024.0))]).unwrap();
        let state = SecurityState { quotas: Arc::new(quotas), ..SecurityState::default() };
        let back = SecurityState::decode(&state.encode()).unwrap();
        assert_eq!(back.quotas.len(), 1);
        let resolved = back.quotas.quota_for("a b", "any", crate::quota::QuotaKey::ProducerByteRate).unwrap();
        assert_eq!(resolved.value, 1024.0);
    }

    #[test]
    fn deleting_the_last_credential_removes_the_user() {
        let mut state = SecurityState::default();
        let credential = ScramCredential::from_password(ScramMechanism::Sha512, "pw", 4096).unwrap();
        state.upsert_scram("bob", credential);
        assert!(!state.delete_scram("bob", ScramMechanism::Sha256));
        assert!(state.delete_scram("bob", ScramMechanism::Sha512));
        assert!(state.scram.is_empty());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(SecurityState::decode("nope").is_err());
        assert!(SecurityState::decode(&format!("{MAGIC}\nscram a\n")).is_err());
        assert!(SecurityState::decode(&format!("{MAGIC}\nwhat ever\n")).is_err());
    }
}

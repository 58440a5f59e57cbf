//! Bearer tokens, in the replicated state. A token names a principal and a
//! role; every command carries them as its caller, and the rules decide
//! what the caller may do.
//!
//! Creating and revoking a token are Raft log entries (`TokenChange`), so
//! every member accepts the same tokens and the command archive records
//! who could act, and when. The log carries a token's SHA-256, never the
//! token: the member that took the request shows it once. A group's first
//! admin token is seeded once, by its first leader (`TokenChange::Seed`,
//! applied only while the group has no token).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use wallet_core::{Caller, Role};

/// The principal of the group's first admin token.
pub const FIRST_ADMIN: &str = "admin";

/// The longest a token may be.
const TOKEN_BYTES_MAX: usize = 512;

/// The roles a token may hold: never the node's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Admin,
    Client,
    Auditor,
}

impl RoleName {
    pub fn role(self) -> Role {
        match self {
            RoleName::Admin => Role::Admin,
            RoleName::Client => Role::Client,
            RoleName::Auditor => Role::Auditor,
        }
    }
}

/// What the replicated state keeps of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// 16 lower-case hex digits.
    pub id: String,
    pub sha256: [u8; 32],
    pub role: RoleName,
    pub principal: String,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
}

impl StoredToken {
    /// A new token's record: a fresh id, `token`'s hash, and the principal
    /// asked for (`<role>-<id>` by default).
    pub fn new(
        token: &str,
        role: RoleName,
        principal: Option<String>,
        expires_ms: Option<u64>,
    ) -> Self {
        let id = hex::encode(rand::random::<[u8; 8]>());
        let principal = principal.unwrap_or_else(|| format!("{}-{id}", role.role().name()));
        StoredToken {
            id,
            sha256: hash(token),
            role,
            principal,
            created_ms: now_ms(),
            expires_ms,
        }
    }

    fn live_at(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|at| at > now_ms)
    }
}

/// A token as an admin may see it: never its secret, nor its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub role: RoleName,
    pub principal: String,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
}

impl From<&StoredToken> for TokenInfo {
    fn from(t: &StoredToken) -> Self {
        TokenInfo {
            id: t.id.clone(),
            role: t.role,
            principal: t.principal.clone(),
            created_ms: t.created_ms,
            expires_ms: t.expires_ms,
        }
    }
}

/// A change to the tokens: one Raft entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenChange {
    /// The group's first tokens; applied only while it has none.
    Seed(Vec<StoredToken>),
    Create(StoredToken),
    /// `at_ms`: the leader's time, against which "the last admin token
    /// that has not expired" is judged the same on every member.
    Revoke {
        id: String,
        at_ms: u64,
    },
}

/// What applying a change did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenOutcome {
    /// Whether the seed was taken (the group had no token).
    Seeded(bool),
    Created(TokenInfo),
    Revoked(TokenInfo),
    Refused(TokenRefused),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenRefused {
    Unknown,
    /// The last admin token that has not expired: nobody could manage
    /// tokens any more.
    LastAdmin,
    /// Another token has this id or this secret.
    Taken,
}

/// The store's writes for a change: tokens put, and ids removed.
#[derive(Debug, Default)]
pub struct TokenWrites {
    pub put: Vec<StoredToken>,
    pub delete: Vec<String>,
}

/// The tokens a member accepts, in memory, as the state holds them.
#[derive(Debug, Default)]
pub struct Registry {
    by_hash: HashMap<[u8; 32], StoredToken>,
    ids: BTreeMap<String, [u8; 32]>,
}

impl Registry {
    pub fn new(tokens: impl IntoIterator<Item = StoredToken>) -> Registry {
        let mut registry = Registry::default();
        registry.apply(TokenWrites {
            put: tokens.into_iter().collect(),
            delete: Vec::new(),
        });
        registry
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// What `change` does here, without doing it.
    pub fn decide(&self, change: &TokenChange) -> (TokenOutcome, TokenWrites) {
        let mut writes = TokenWrites::default();
        let outcome = match change {
            TokenChange::Seed(tokens) => {
                let seeded = self.is_empty();
                if seeded {
                    writes.put.clone_from(tokens);
                }
                TokenOutcome::Seeded(seeded)
            }
            TokenChange::Create(token) => {
                if self.ids.contains_key(&token.id) || self.by_hash.contains_key(&token.sha256) {
                    TokenOutcome::Refused(TokenRefused::Taken)
                } else {
                    writes.put.push(token.clone());
                    TokenOutcome::Created(TokenInfo::from(token))
                }
            }
            TokenChange::Revoke { id, at_ms } => match self.get(id) {
                None => TokenOutcome::Refused(TokenRefused::Unknown),
                Some(token) => {
                    let live_admin =
                        |t: &StoredToken| t.role == RoleName::Admin && t.live_at(*at_ms);
                    let admins = self.by_hash.values().filter(|t| live_admin(t)).count();
                    if live_admin(token) && admins == 1 {
                        TokenOutcome::Refused(TokenRefused::LastAdmin)
                    } else {
                        writes.delete.push(id.clone());
                        TokenOutcome::Revoked(TokenInfo::from(token))
                    }
                }
            },
        };
        (outcome, writes)
    }

    /// Takes writes the store committed.
    pub fn apply(&mut self, writes: TokenWrites) {
        for id in writes.delete {
            if let Some(hash) = self.ids.remove(&id) {
                self.by_hash.remove(&hash);
            }
        }
        for token in writes.put {
            self.ids.insert(token.id.clone(), token.sha256);
            self.by_hash.insert(token.sha256, token);
        }
    }

    fn get(&self, id: &str) -> Option<&StoredToken> {
        self.by_hash.get(self.ids.get(id)?)
    }

    /// Who `token` is from, if it is known and has not expired.
    pub fn authenticate(&self, token: &str, now_ms: u64) -> Option<Caller<String>> {
        let stored = self.by_hash.get(&hash(token))?;
        stored.live_at(now_ms).then(|| Caller {
            role: stored.role.role(),
            principal: stored.principal.clone(),
        })
    }

    /// Every token, oldest first.
    pub fn list(&self) -> Vec<TokenInfo> {
        let mut tokens: Vec<TokenInfo> = self.by_hash.values().map(TokenInfo::from).collect();
        tokens.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        tokens
    }
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 32 random bytes, in hex.
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A token must fit in a header: 1 to 512 visible ASCII characters.
pub fn is_valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= TOKEN_BYTES_MAX
        && token.bytes().all(|b| b.is_ascii_graphic())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(registry: &mut Registry, change: TokenChange) -> TokenOutcome {
        let (outcome, writes) = registry.decide(&change);
        registry.apply(writes);
        outcome
    }

    fn token(secret: &str, role: RoleName, expires_ms: Option<u64>) -> StoredToken {
        StoredToken::new(secret, role, None, expires_ms)
    }

    #[test]
    fn a_seed_is_taken_once_and_tokens_authenticate_until_they_expire() {
        let mut registry = Registry::default();
        let admin = StoredToken::new("first", RoleName::Admin, Some(FIRST_ADMIN.into()), None);
        let seed = TokenChange::Seed(vec![admin]);
        assert_eq!(applied(&mut registry, seed), TokenOutcome::Seeded(true));
        let again = TokenChange::Seed(vec![token("second", RoleName::Admin, None)]);
        assert_eq!(applied(&mut registry, again), TokenOutcome::Seeded(false));
        let who = registry.authenticate("first", now_ms()).expect("seeded");
        assert_eq!(
            (who.role, who.principal.as_str()),
            (Role::Admin, FIRST_ADMIN)
        );
        assert_eq!(registry.authenticate("second", now_ms()), None);

        let audit = token("audit", RoleName::Auditor, Some(1_000));
        let outcome = applied(&mut registry, TokenChange::Create(audit.clone()));
        assert_eq!(outcome, TokenOutcome::Created(TokenInfo::from(&audit)));
        assert!(registry.authenticate("audit", 999).is_some());
        assert_eq!(registry.authenticate("audit", 1_000), None, "expired");
        assert!(audit.principal.starts_with("auditor-"));
        assert_eq!(registry.list().len(), 2);
    }

    #[test]
    fn a_taken_id_or_secret_is_refused() {
        let mut registry = Registry::default();
        let first = token("one", RoleName::Client, None);
        applied(&mut registry, TokenChange::Create(first.clone()));
        let same_secret = token("one", RoleName::Admin, None);
        let mut same_id = token("two", RoleName::Admin, None);
        same_id.id.clone_from(&first.id);
        for change in [same_secret, same_id] {
            assert_eq!(
                applied(&mut registry, TokenChange::Create(change)),
                TokenOutcome::Refused(TokenRefused::Taken)
            );
        }
        assert_eq!(registry.list().len(), 1);
    }

    #[test]
    fn revoking_keeps_the_last_live_admin_token() {
        let mut registry = Registry::default();
        let admin = token("admin", RoleName::Admin, None);
        let old_admin = token("old", RoleName::Admin, Some(500));
        let client = token("client", RoleName::Client, None);
        for t in [&admin, &old_admin, &client] {
            applied(&mut registry, TokenChange::Create(t.clone()));
        }
        let revoke = |id: &str, at_ms| TokenChange::Revoke {
            id: id.into(),
            at_ms,
        };
        assert_eq!(
            applied(&mut registry, revoke(&client.id, 100)),
            TokenOutcome::Revoked(TokenInfo::from(&client))
        );
        assert_eq!(registry.authenticate("client", 100), None);
        assert_eq!(
            applied(&mut registry, revoke(&client.id, 100)),
            TokenOutcome::Refused(TokenRefused::Unknown)
        );
        // At 600 the old admin token has expired: the other is the last.
        assert_eq!(
            applied(&mut registry, revoke(&admin.id, 600)),
            TokenOutcome::Refused(TokenRefused::LastAdmin)
        );
        assert!(matches!(
            applied(&mut registry, revoke(&admin.id, 100)),
            TokenOutcome::Revoked(_)
        ));
    }

    #[test]
    fn tokens_must_fit_in_a_header() {
        assert!(is_valid_token("s3cret-admin"));
        for bad in ["", "has space", "tab\t", &"x".repeat(513)] {
            assert!(!is_valid_token(bad), "{bad:?}");
        }
    }
}

//! A group's first tokens: seeded once, by its first leader.
//!
//! The seed is `WALLET_ADMIN_TOKEN` (or, without it, a random admin token
//! printed once by the member whose seed the group takes), or the tokens of
//! a `tokens.json` that a release keeping tokens per node left in the data
//! directory, imported as they are (hashes only).

use crate::partition::Partition;
use crate::tokens::{FIRST_ADMIN, RoleName, StoredToken, is_valid_token, new_secret, now_ms};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The per-node token file of earlier releases, imported once.
pub const LEGACY_TOKENS_FILE: &str = "tokens.json";
/// How often a member that does not lead looks again whether the group has
/// its tokens.
const SEED_RETRY: Duration = Duration::from_millis(200);

/// What a member offers to seed its group with.
pub struct Seed {
    tokens: Vec<StoredToken>,
    /// The admin token, when it was generated here: printed if taken.
    generated: Option<String>,
    /// A legacy token file the seed came from, renamed once taken.
    legacy: Option<PathBuf>,
    /// The admin token the operator gave, to warn when the group has others.
    given: Option<String>,
}

#[derive(Deserialize)]
struct LegacyFile {
    tokens: Vec<LegacyToken>,
}

#[derive(Deserialize)]
struct LegacyToken {
    id: String,
    sha256: String,
    role: RoleName,
    principal: String,
    created_ms: u64,
    expires_ms: Option<u64>,
}

impl Seed {
    pub fn new(data_dir: &Path, admin_token: Option<String>) -> Result<Seed> {
        if let Some(token) = &admin_token
            && !is_valid_token(token)
        {
            return Err(Error::TokenRefused(
                "WALLET_ADMIN_TOKEN must be 1 to 512 visible ASCII characters".into(),
            ));
        }
        let legacy = data_dir.join(LEGACY_TOKENS_FILE);
        if let Some(tokens) = read_legacy(&legacy)? {
            return Ok(Seed {
                tokens,
                generated: None,
                legacy: Some(legacy),
                given: admin_token,
            });
        }
        let (token, generated) = match &admin_token {
            Some(token) => (token.clone(), None),
            None => {
                let token = new_secret();
                (token.clone(), Some(token))
            }
        };
        let admin = StoredToken::new(&token, RoleName::Admin, Some(FIRST_ADMIN.into()), None);
        Ok(Seed {
            tokens: vec![admin],
            generated,
            legacy: None,
            given: admin_token,
        })
    }

    /// Seeds the group once this member leads it, unless it has tokens
    /// already; returns once the group has tokens. A group of one leads at
    /// once.
    pub async fn plant(self, partition: Arc<Partition>) {
        loop {
            if partition.store().has_tokens() {
                return self.not_taken(&partition);
            }
            let leads = {
                let metrics = partition.raft().metrics();
                let metrics = metrics.borrow();
                metrics.current_leader == Some(metrics.id)
            };
            if leads {
                match partition.seed_tokens(self.tokens.clone()).await {
                    Ok(true) => return self.taken(),
                    Ok(false) => return self.not_taken(&partition),
                    Err(error) => tracing::warn!(%error, "seeding the group's tokens"),
                }
            }
            tokio::time::sleep(SEED_RETRY).await;
        }
    }

    fn taken(self) {
        if let Some(token) = self.generated {
            // Printed once: only its hash is kept.
            println!("admin token (shown once, keep it): {token}");
        }
        if let Some(path) = self.legacy {
            tracing::info!(path = %path.display(), "tokens imported into the group's state");
            let imported = path.with_extension("json.imported");
            if let Err(error) = std::fs::rename(&path, &imported) {
                tracing::warn!(%error, "renaming the imported token file");
            }
        }
    }

    fn not_taken(self, partition: &Partition) {
        let known_admin = |token: &str| {
            partition
                .store()
                .authenticate(token, now_ms())
                .is_some_and(|who| who.role == wallet_core::Role::Admin)
        };
        if self.legacy.is_some() || self.given.as_deref().is_some_and(|t| !known_admin(t)) {
            tracing::warn!(
                "the group already has tokens: this member's WALLET_ADMIN_TOKEN or token file is ignored"
            );
        }
    }
}

fn read_legacy(path: &Path) -> Result<Option<Vec<StoredToken>>> {
    let corrupt = |why: String| Error::TokenFileCorrupt {
        path: path.to_owned(),
        why,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::TokenFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    let file: LegacyFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    file.tokens
        .into_iter()
        .map(|t| {
            let sha256 = hex::decode(&t.sha256)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| corrupt("a sha256 is not 64 hex digits".into()))?;
            if !wallet_core::principal::is_valid(&t.principal) {
                return Err(corrupt("a principal outside the principal syntax".into()));
            }
            Ok(StoredToken {
                id: t.id,
                sha256,
                role: t.role,
                principal: t.principal,
                created_ms: t.created_ms,
                expires_ms: t.expires_ms,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

//! Bearer tokens and roles.
//!
//! Tokens live in `<data_dir>/tokens.json` (mode 0600) as SHA-256 hashes
//! with their role; the tokens themselves are never stored. On first start
//! (no token file) an admin token is created: `WALLET_ADMIN_TOKEN` if set,
//! else 32 random bytes in hex, which the caller prints once.

use super::AppState;
use super::errors::ApiError;
use crate::service::{AccountView, WalletService};
use crate::{Error, Result};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The token file, inside the data directory.
pub const TOKENS_FILE: &str = "tokens.json";

/// The admin token to create on first start, instead of a random one.
pub const ADMIN_TOKEN_ENV: &str = "WALLET_ADMIN_TOKEN";

const FILE_MODE: u32 = 0o600;

/// What a token may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Moves money only out of, and reads only, accounts whose `owner` is
    /// this name.
    Client { owner: String },
    /// Reads everything, writes nothing.
    Auditor,
}

impl Role {
    /// Whether this role may move money out of an account with `owner`.
    pub fn may_debit(&self, owner: Option<&str>) -> bool {
        match self {
            Role::Admin => true,
            Role::Client { owner: mine } => owner == Some(mine.as_str()),
            Role::Auditor => false,
        }
    }

    /// Whether this role may read an account with `owner`.
    pub fn may_read(&self, owner: Option<&str>) -> bool {
        match self {
            Role::Admin | Role::Auditor => true,
            Role::Client { owner: mine } => owner == Some(mine.as_str()),
        }
    }

    /// Refuses an account this role may not read.
    pub(crate) fn check_read(&self, account: &AccountView) -> Result<(), ApiError> {
        if self.may_read(account.owner.as_deref()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "account {} belongs to someone else",
                account.account_id
            )))
        }
    }

    fn name(&self) -> RoleName {
        match self {
            Role::Admin => RoleName::Admin,
            Role::Client { .. } => RoleName::Client,
            Role::Auditor => RoleName::Auditor,
        }
    }

    fn owner(&self) -> Option<&str> {
        match self {
            Role::Client { owner } => Some(owner),
            Role::Admin | Role::Auditor => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RoleName {
    Admin,
    Client,
    Auditor,
}

impl RoleName {
    pub(crate) fn with_owner(self, owner: Option<String>) -> Option<Role> {
        match (self, owner) {
            (RoleName::Admin, None) => Some(Role::Admin),
            (RoleName::Auditor, None) => Some(Role::Auditor),
            (RoleName::Client, Some(owner)) => Some(Role::Client { owner }),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<StoredToken>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredToken {
    /// Hex SHA-256 of the token.
    sha256: String,
    role: RoleName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    created_ms: u64,
}

struct Tokens {
    file: TokenFile,
    by_hash: HashMap<[u8; 32], Role>,
}

/// The tokens a node accepts.
pub struct Auth {
    path: PathBuf,
    tokens: RwLock<Tokens>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("path", &self.path).finish()
    }
}

impl Auth {
    /// Opens the token file of `data_dir`, creating it with an admin token
    /// on first start (from `WALLET_ADMIN_TOKEN` if set). Returns the new
    /// admin token when it was generated here, to print once.
    pub fn open(data_dir: &Path) -> Result<(Auth, Option<String>)> {
        Self::open_with(data_dir, std::env::var(ADMIN_TOKEN_ENV).ok())
    }

    /// [`Auth::open`] with the admin token given rather than read from the
    /// environment. `admin_token` only matters when no token file exists.
    pub fn open_with(
        data_dir: &Path,
        admin_token: Option<String>,
    ) -> Result<(Auth, Option<String>)> {
        let path = data_dir.join(TOKENS_FILE);
        let io = |source| Error::TokenFile {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: TokenFile =
                    serde_json::from_slice(&bytes).map_err(|e| Error::TokenFileCorrupt {
                        path: path.clone(),
                        why: e.to_string(),
                    })?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(FILE_MODE))
                    .map_err(io)?;
                let auth = Auth::from_file(path.clone(), file)?;
                if let Some(token) = admin_token
                    && auth.authenticate(&token) != Some(Role::Admin)
                {
                    tracing::warn!(
                        path = %path.display(),
                        "{ADMIN_TOKEN_ENV} is ignored: the token file already exists"
                    );
                }
                Ok((auth, None))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (token, generated) = match admin_token {
                    Some(token) => {
                        check_token(&token)?;
                        (token, false)
                    }
                    None => (new_token(), true),
                };
                let auth = Auth::from_file(path.clone(), TokenFile::default())?;
                auth.add(&token, Role::Admin)?;
                Ok((auth, generated.then_some(token)))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_file(path: PathBuf, file: TokenFile) -> Result<Auth> {
        let mut by_hash = HashMap::new();
        for stored in &file.tokens {
            let corrupt = |why: &str| Error::TokenFileCorrupt {
                path: path.clone(),
                why: why.to_owned(),
            };
            let hash: [u8; 32] = hex::decode(&stored.sha256)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| corrupt("a sha256 is not 64 hex digits"))?;
            let role = stored
                .role
                .with_owner(stored.owner.clone())
                .ok_or_else(|| corrupt("client tokens need an owner; others have none"))?;
            by_hash.insert(hash, role);
        }
        Ok(Auth {
            path,
            tokens: RwLock::new(Tokens { file, by_hash }),
        })
    }

    /// The role of a token, if it is known.
    pub fn authenticate(&self, token: &str) -> Option<Role> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        tokens.by_hash.get(&hash).cloned()
    }

    /// Creates, stores and returns a new random token with this role.
    pub fn create_token(&self, role: Role) -> Result<String> {
        let token = new_token();
        self.add(&token, role)?;
        Ok(token)
    }

    fn add(&self, token: &str, role: Role) -> Result<()> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        let mut file = tokens.file.clone();
        file.version = 1;
        file.tokens.push(StoredToken {
            sha256: hex::encode(hash),
            role: role.name(),
            owner: role.owner().map(str::to_owned),
            created_ms: now_ms(),
        });
        write_private(&self.path, &file)?;
        tokens.file = file;
        tokens.by_hash.insert(hash, role);
        Ok(())
    }
}

fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A token must fit in a header: visible ASCII, no spaces.
fn check_token(token: &str) -> Result<()> {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) && token.len() <= 512 {
        Ok(())
    } else {
        Err(Error::TokenRefused(format!(
            "{ADMIN_TOKEN_ENV} must be 1 to 512 visible ASCII characters"
        )))
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Replaces `path` atomically with `file`, readable by its owner only.
fn write_private(path: &Path, file: &TokenFile) -> Result<()> {
    let io = |source| Error::TokenFile {
        path: path.to_owned(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| io(std::io::Error::other(e)))?;
    let tmp = path.with_extension("json.tmp");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .map_err(io)?;
    // The mode above only applies to a new file; a stale one is tightened.
    out.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .map_err(io)?;
    out.write_all(&bytes).map_err(io)?;
    out.sync_all().map_err(io)?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Any authenticated caller.
pub struct Caller(pub Role);

/// A caller that may write: an admin or a client (never an auditor).
pub struct Writer(pub Role);

/// An admin.
pub struct Admin;

impl<S: WalletService> FromRequestParts<AppState<S>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <token>`"))?;
        state
            .auth
            .authenticate(token)
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}

impl<S: WalletService> FromRequestParts<AppState<S>> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await?.0 {
            Role::Auditor => Err(ApiError::forbidden("auditors may not write")),
            role => Ok(Writer(role)),
        }
    }
}

impl<S: WalletService> FromRequestParts<AppState<S>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await?.0 {
            Role::Admin => Ok(Admin),
            _ => Err(ApiError::forbidden("only an admin may do this")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_a_private_file_with_the_given_admin_token() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::TokenRefused(e.to_string()))?;
        let (auth, printed) = Auth::open_with(dir.path(), Some("s3cret-admin".into()))?;
        assert_eq!(printed, None, "a token from the environment is not printed");
        assert_eq!(auth.authenticate("s3cret-admin"), Some(Role::Admin));
        assert_eq!(auth.authenticate("other"), None);

        let path = dir.path().join(TOKENS_FILE);
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!text.contains("s3cret-admin"), "only hashes are stored");

        // A second start keeps the file and ignores another admin token.
        drop(auth);
        let (again, printed) = Auth::open_with(dir.path(), Some("another".into()))?;
        assert_eq!(printed, None);
        assert_eq!(again.authenticate("s3cret-admin"), Some(Role::Admin));
        assert_eq!(again.authenticate("another"), None);
        Ok(())
    }

    #[test]
    fn generated_tokens_are_printed_once_and_persist() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::TokenRefused(e.to_string()))?;
        let (auth, printed) = Auth::open_with(dir.path(), None)?;
        let admin = printed.unwrap_or_default();
        assert_eq!(admin.len(), 64);
        assert_eq!(auth.authenticate(&admin), Some(Role::Admin));
        let alice = Role::Client {
            owner: "alice".into(),
        };
        let client = auth.create_token(alice.clone())?;
        let auditor = auth.create_token(Role::Auditor)?;
        drop(auth);

        let (auth, printed) = Auth::open_with(dir.path(), None)?;
        assert_eq!(printed, None);
        assert_eq!(auth.authenticate(&admin), Some(Role::Admin));
        assert_eq!(auth.authenticate(&client), Some(alice));
        assert_eq!(auth.authenticate(&auditor), Some(Role::Auditor));
        let mode =
            std::fs::metadata(dir.path().join(TOKENS_FILE)).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        Ok(())
    }

    #[test]
    fn refuses_a_bad_admin_token_and_a_corrupt_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::TokenRefused(e.to_string()))?;
        for bad in ["", "has space", "tab\t"] {
            assert!(matches!(
                Auth::open_with(dir.path(), Some(bad.into())),
                Err(Error::TokenRefused(_))
            ));
        }
        std::fs::write(dir.path().join(TOKENS_FILE), b"{not json")
            .map_err(|e| Error::TokenRefused(e.to_string()))?;
        assert!(matches!(
            Auth::open_with(dir.path(), None),
            Err(Error::TokenFileCorrupt { .. })
        ));
        Ok(())
    }
}

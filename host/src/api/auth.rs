//! Bearer tokens: who a request is from. A token names a principal and a
//! role; every command carries them as its caller, and the rules decide
//! what the caller may do. The edge decides only who may read what (the
//! read models are not commands) and who may manage tokens (admins).
//!
//! Tokens live in `<data_dir>/tokens.json` (mode 0600) as SHA-256 hashes
//! with their id, role, principal and expiry; the tokens themselves are
//! never stored. On first start (no token file) an admin token is created:
//! `WALLET_ADMIN_TOKEN` if set, else 32 random bytes in hex, which the
//! caller prints once.

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
use wallet_core::{Caller as CoreCaller, Role, principal};

/// The token file, inside the data directory.
pub const TOKENS_FILE: &str = "tokens.json";

/// The admin token to create on first start, instead of a random one.
pub const ADMIN_TOKEN_ENV: &str = "WALLET_ADMIN_TOKEN";

/// The principal of the admin token made at first start.
pub const FIRST_ADMIN: &str = "admin";

const FILE_MODE: u32 = 0o600;
const FILE_VERSION: u32 = 2;

/// Whoever a request is from.
pub type Who = CoreCaller<String>;

/// Whether `who` may read an account with `owner`.
pub fn may_read(who: &Who, owner: Option<&str>) -> bool {
    match who.role {
        Role::Admin | Role::Auditor | Role::System => true,
        Role::Client => owner == Some(who.principal.as_str()),
    }
}

/// Refuses an account `who` may not read.
pub(crate) fn check_read(who: &Who, account: &AccountView) -> Result<(), ApiError> {
    if may_read(who, account.owner.as_deref()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "account {} belongs to someone else",
            account.account_id
        )))
    }
}

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

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<StoredToken>,
}

/// What is kept of a token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredToken {
    id: String,
    /// Hex SHA-256 of the token.
    sha256: String,
    role: RoleName,
    principal: String,
    created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_ms: Option<u64>,
}

/// A token as an admin may see it: never its secret, nor its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

/// What an admin asks for.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub role: RoleName,
    /// Required for a client token (the owner it acts for); a name for the
    /// others, `<role>-<id>` by default.
    pub principal: Option<String>,
    pub expires_ms: Option<u64>,
}

/// Why a token was not revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeRefused {
    Unknown,
    /// The last admin token that has not expired: nobody could manage
    /// tokens any more.
    LastAdmin,
}

struct Tokens {
    file: TokenFile,
    by_hash: HashMap<[u8; 32], usize>,
}

impl Tokens {
    fn new(path: &Path, file: TokenFile) -> Result<Tokens> {
        let corrupt = |why: &str| Error::TokenFileCorrupt {
            path: path.to_owned(),
            why: why.to_owned(),
        };
        if file.version != FILE_VERSION {
            return Err(corrupt("a token file of another version"));
        }
        let mut by_hash = HashMap::new();
        for (i, stored) in file.tokens.iter().enumerate() {
            let hash: [u8; 32] = hex::decode(&stored.sha256)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| corrupt("a sha256 is not 64 hex digits"))?;
            if !principal::is_valid(&stored.principal) {
                return Err(corrupt("a principal outside the principal syntax"));
            }
            by_hash.insert(hash, i);
        }
        Ok(Tokens { file, by_hash })
    }
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
    /// on first start (`admin_token`, or a random one). Returns the new
    /// admin token when it was generated here, to print once.
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
                let tokens = Tokens::new(&path, file)?;
                let auth = Auth {
                    path: path.clone(),
                    tokens: RwLock::new(tokens),
                };
                if let Some(token) = admin_token
                    && auth.authenticate(&token).map(|w| w.role) != Some(Role::Admin)
                {
                    tracing::warn!(path = %path.display(), "{ADMIN_TOKEN_ENV} is ignored: the token file already exists");
                }
                Ok((auth, None))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (token, generated) = match admin_token {
                    Some(token) => {
                        check_token(&token)?;
                        (token, false)
                    }
                    None => (new_secret(), true),
                };
                let empty = TokenFile {
                    version: FILE_VERSION,
                    tokens: Vec::new(),
                };
                let auth = Auth {
                    path: path.clone(),
                    tokens: RwLock::new(Tokens::new(&path, empty)?),
                };
                let first = NewToken {
                    role: RoleName::Admin,
                    principal: Some(FIRST_ADMIN.into()),
                    expires_ms: None,
                };
                auth.add(&token, first)?;
                Ok((auth, generated.then_some(token)))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Who a token is from, if it is known and has not expired.
    pub fn authenticate(&self, token: &str) -> Option<Who> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        let stored = &tokens.file.tokens[*tokens.by_hash.get(&hash)?];
        if stored.expires_ms.is_some_and(|at| at <= now_ms()) {
            return None;
        }
        Some(CoreCaller {
            role: stored.role.role(),
            principal: stored.principal.clone(),
        })
    }

    /// Creates, stores and returns a new random token.
    pub fn create_token(&self, new: NewToken) -> Result<(String, TokenInfo)> {
        let token = new_secret();
        let info = self.add(&token, new)?;
        Ok((token, info))
    }

    /// Every token, oldest first.
    pub fn list(&self) -> Vec<TokenInfo> {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        tokens.file.tokens.iter().map(TokenInfo::from).collect()
    }

    /// Removes the token `id`.
    pub fn revoke(&self, id: &str) -> Result<Result<TokenInfo, RevokeRefused>> {
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        let Some(at) = tokens.file.tokens.iter().position(|t| t.id == id) else {
            return Ok(Err(RevokeRefused::Unknown));
        };
        let now = now_ms();
        let live_admin =
            |t: &StoredToken| t.role == RoleName::Admin && t.expires_ms.is_none_or(|at| at > now);
        let admins = tokens.file.tokens.iter().filter(|t| live_admin(t)).count();
        if live_admin(&tokens.file.tokens[at]) && admins == 1 {
            return Ok(Err(RevokeRefused::LastAdmin));
        }
        let mut file = tokens.file.clone();
        let removed = file.tokens.remove(at);
        write_private(&self.path, &file)?;
        *tokens = Tokens::new(&self.path, file)?;
        Ok(Ok(TokenInfo::from(&removed)))
    }

    fn add(&self, token: &str, new: NewToken) -> Result<TokenInfo> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let id = hex::encode(rand::random::<[u8; 8]>());
        let principal = new.principal.unwrap_or_else(|| {
            let role = new.role.role().name();
            format!("{role}-{id}")
        });
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        let mut file = tokens.file.clone();
        let stored = StoredToken {
            id,
            sha256: hex::encode(hash),
            role: new.role,
            principal,
            created_ms: now_ms(),
            expires_ms: new.expires_ms,
        };
        let info = TokenInfo::from(&stored);
        file.tokens.push(stored);
        write_private(&self.path, &file)?;
        *tokens = Tokens::new(&self.path, file)?;
        Ok(info)
    }
}

fn new_secret() -> String {
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

pub fn now_ms() -> u64 {
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
pub struct Caller(pub Who);

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
            .ok_or_else(|| ApiError::unauthorized("unknown or expired token"))
    }
}

impl<S: WalletService> FromRequestParts<AppState<S>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let who = Caller::from_request_parts(parts, state).await?.0;
        match who.role {
            Role::Admin => Ok(Admin),
            _ => Err(ApiError::forbidden("only an admin may do this")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn first_start_creates_a_private_file_with_the_given_admin_token() -> Result<()> {
        let dir = dir();
        let (auth, printed) = Auth::open_with(dir.path(), Some("s3cret-admin".into()))?;
        assert_eq!(printed, None, "a token from the environment is not printed");
        let admin = auth.authenticate("s3cret-admin").expect("known");
        assert_eq!(
            (admin.role, admin.principal.as_str()),
            (Role::Admin, FIRST_ADMIN)
        );
        assert_eq!(auth.authenticate("other"), None);

        let path = dir.path().join(TOKENS_FILE);
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!text.contains("s3cret-admin"), "only hashes are stored");

        drop(auth);
        let (again, printed) = Auth::open_with(dir.path(), Some("another".into()))?;
        assert_eq!(printed, None);
        assert!(again.authenticate("s3cret-admin").is_some());
        assert_eq!(again.authenticate("another"), None);
        Ok(())
    }

    #[test]
    fn tokens_are_listed_without_secrets_expire_and_are_revoked() -> Result<()> {
        let dir = dir();
        let (auth, printed) = Auth::open_with(dir.path(), None)?;
        let admin = printed.unwrap_or_default();
        assert_eq!(admin.len(), 64);
        let alice = NewToken {
            role: RoleName::Client,
            principal: Some("alice".into()),
            expires_ms: None,
        };
        let (client, info) = auth.create_token(alice)?;
        assert_eq!(
            auth.authenticate(&client).map(|w| w.principal),
            Some("alice".into())
        );
        let expired = NewToken {
            role: RoleName::Auditor,
            principal: None,
            expires_ms: Some(now_ms() - 1),
        };
        let (old, old_info) = auth.create_token(expired)?;
        assert!(old_info.principal.starts_with("auditor-"));
        assert_eq!(auth.authenticate(&old), None, "an expired token is refused");

        let listed = serde_json::to_string(&auth.list()).unwrap_or_default();
        assert_eq!(auth.list().len(), 3);
        assert!(!listed.contains(&client) && !listed.contains(&admin));
        assert!(!listed.contains("sha256"));

        assert_eq!(auth.revoke(&info.id)?, Ok(info.clone()));
        assert_eq!(auth.authenticate(&client), None, "revoked");
        assert_eq!(auth.revoke(&info.id)?, Err(RevokeRefused::Unknown));
        let first = auth
            .list()
            .into_iter()
            .find(|t| t.role == RoleName::Admin)
            .expect("admin");
        assert_eq!(auth.revoke(&first.id)?, Err(RevokeRefused::LastAdmin));

        drop(auth);
        let (auth, _) = Auth::open_with(dir.path(), None)?;
        assert!(auth.authenticate(&admin).is_some());
        assert_eq!(auth.authenticate(&client), None, "revocation persists");
        Ok(())
    }

    #[test]
    fn refuses_a_bad_admin_token_and_a_corrupt_file() -> Result<()> {
        let dir = dir();
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

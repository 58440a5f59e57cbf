//! The cluster secret: every message between members carries an
//! HMAC-SHA256 of its bytes under it, and every answer too, so nothing
//! outside the cluster can join, vote, or inject entries.
//!
//! The secret is one or more lines. The first signs; every line verifies.
//! Rotation without downtime: add the new secret as a second line on every
//! member, then move it first, then drop the old one. A secret file is read
//! again when it changes; a bad new content is refused and the old keys
//! stay in use.

use crate::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

type HmacSha256 = Hmac<Sha256>;

/// A secret shorter than this is refused: it could be guessed.
pub const SECRET_MIN_BYTES: usize = 16;
/// How often a secret file is checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The keys in use, shared by the network and the RPC handlers.
#[derive(Clone)]
pub struct ClusterSecret {
    keys: Arc<RwLock<Keys>>,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

struct Keys {
    /// The first is the signing key.
    secrets: Vec<Vec<u8>>,
    modified: Option<SystemTime>,
}

/// A MAC over a stream of bytes, as every accepted key computes it, for
/// checking a message too large to hold before its tag arrives.
pub struct StreamMac {
    macs: Vec<HmacSha256>,
}

fn parse(text: &str, origin: &str) -> Result<Vec<Vec<u8>>> {
    let secrets: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if secrets.is_empty() {
        return Err(Error::ClusterSecret(format!("{origin} holds no secret")));
    }
    if let Some(short) = secrets.iter().position(|s| s.len() < SECRET_MIN_BYTES) {
        return Err(Error::ClusterSecret(format!(
            "{origin}: secret on line {} is shorter than {SECRET_MIN_BYTES} bytes",
            short + 1
        )));
    }
    Ok(secrets)
}

fn read_file(path: &Path) -> Result<(Vec<Vec<u8>>, Option<SystemTime>)> {
    let origin = path.display().to_string();
    let io = |e: std::io::Error| Error::ClusterSecret(format!("reading {origin}: {e}"));
    let modified = std::fs::metadata(path).map_err(io)?.modified().ok();
    let text = std::fs::read_to_string(path).map_err(io)?;
    Ok((parse(&text, &origin)?, modified))
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

impl ClusterSecret {
    /// The secret given as text (`WALLET_CLUSTER_SECRET`); fixed for the
    /// life of the process.
    pub fn from_text(text: &str) -> Result<ClusterSecret> {
        let secrets = parse(text, "WALLET_CLUSTER_SECRET")?;
        Ok(ClusterSecret {
            keys: Arc::new(RwLock::new(Keys {
                secrets,
                modified: None,
            })),
            file: None,
        })
    }

    /// The secret in `path`, read again whenever it changes (call
    /// [`ClusterSecret::watch`] to start that).
    pub fn from_file(path: &Path) -> Result<ClusterSecret> {
        let (secrets, modified) = read_file(path)?;
        Ok(ClusterSecret {
            keys: Arc::new(RwLock::new(Keys { secrets, modified })),
            file: Some(path.to_path_buf()),
        })
    }

    /// Checks the file for changes every second, for as long as the
    /// runtime runs.
    pub fn watch(&self) {
        let Some(path) = self.file.clone() else {
            return;
        };
        let keys = Arc::clone(&self.keys);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RELOAD_EVERY);
            loop {
                ticks.tick().await;
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                let known = keys.read().unwrap_or_else(|p| p.into_inner()).modified;
                if modified.is_none() || modified == known {
                    continue;
                }
                match read_file(&path) {
                    Ok((secrets, modified)) => {
                        let count = secrets.len();
                        *keys.write().unwrap_or_else(|p| p.into_inner()) =
                            Keys { secrets, modified };
                        tracing::info!(secrets = count, "cluster secret reloaded");
                    }
                    Err(error) => {
                        tracing::error!(%error, "cluster secret file changed but is unusable; keeping the previous secret");
                    }
                }
            }
        });
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The tag of `label` and `body` under the signing key.
    pub fn sign(&self, label: &[u8], body: &[u8]) -> [u8; 32] {
        let keys = self.keys();
        let mut mac = mac(&keys.secrets[0]);
        mac.update(label);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `label` and `body` under any accepted
    /// key (compared in constant time).
    pub fn verify(&self, label: &[u8], body: &[u8], tag: &[u8]) -> bool {
        self.keys().secrets.iter().any(|key| {
            let mut mac = mac(key);
            mac.update(label);
            mac.update(body);
            mac.verify_slice(tag).is_ok()
        })
    }

    /// A MAC to feed a stream through, signing or checking it at the end.
    pub fn stream(&self, label: &[u8]) -> StreamMac {
        let macs = self
            .keys()
            .secrets
            .iter()
            .map(|key| {
                let mut mac = mac(key);
                mac.update(label);
                mac
            })
            .collect();
        StreamMac { macs }
    }
}

impl StreamMac {
    pub fn update(&mut self, bytes: &[u8]) {
        for mac in &mut self.macs {
            mac.update(bytes);
        }
    }

    /// The tag under the signing key.
    pub fn sign(self) -> [u8; 32] {
        let first = self.macs.into_iter().next().expect("at least one key");
        first.finalize().into_bytes().into()
    }

    pub fn verify(self, tag: &[u8]) -> bool {
        self.macs
            .into_iter()
            .any(|mac| mac.verify_slice(tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a-secret-of-enough-length";
    const B: &str = "another-secret-of-enough-length";

    #[test]
    fn a_tag_verifies_under_any_accepted_key_and_nothing_else() {
        let old = ClusterSecret::from_text(A).expect("ok");
        let both = ClusterSecret::from_text(&format!("{B}\n{A}\n")).expect("ok");
        let new = ClusterSecret::from_text(B).expect("ok");
        let tag = old.sign(b"append", b"body");
        assert!(both.verify(b"append", b"body", &tag));
        assert!(!new.verify(b"append", b"body", &tag));
        assert!(!both.verify(b"vote", b"body", &tag), "the label is signed");
        assert!(!both.verify(b"append", b"bodY", &tag));
        let mut stream = both.stream(b"snapshot");
        stream.update(b"par");
        stream.update(b"ts");
        let tag = stream.sign();
        let mut check = new.stream(b"snapshot");
        check.update(b"parts");
        assert!(check.verify(&tag));
    }

    #[test]
    fn short_or_missing_secrets_are_refused() {
        assert!(ClusterSecret::from_text("").is_err());
        assert!(ClusterSecret::from_text("short").is_err());
        assert!(ClusterSecret::from_text(&format!("{A}\nshort")).is_err());
    }

    #[tokio::test]
    async fn a_changed_file_takes_effect_and_a_broken_one_does_not() {
        let dir = tempfile::tempdir().expect("ok");
        let path = dir.path().join("secret");
        std::fs::write(&path, A).expect("ok");
        let secret = ClusterSecret::from_file(&path).expect("ok");
        secret.watch();
        let signed_by = |s: &str| ClusterSecret::from_text(s).expect("ok").sign(b"l", b"b");
        assert!(secret.verify(b"l", b"b", &signed_by(A)));
        // A later modification time than the first read's.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, B).expect("ok");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !secret.verify(b"l", b"b", &signed_by(B)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the new secret was not loaded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!secret.verify(b"l", b"b", &signed_by(A)));
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, "short").expect("ok");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            secret.verify(b"l", b"b", &signed_by(B)),
            "kept the usable secret"
        );
    }
}

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use wasmtime::Engine;
use wasmtime::component::Component;

/// A state-machine version: the SHA-256 of its component's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct VersionHash(pub [u8; 32]);

impl VersionHash {
    pub fn of(bytes: &[u8]) -> Self {
        VersionHash(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for VersionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for VersionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VersionHash({self})")
    }
}

impl FromStr for VersionHash {
    type Err = hex::FromHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(VersionHash(out))
    }
}

impl From<VersionHash> for String {
    fn from(hash: VersionHash) -> String {
        hash.to_string()
    }
}

impl TryFrom<String> for VersionHash {
    type Error = hex::FromHexError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A compiled state-machine component that passed the import check.
#[derive(Clone)]
pub struct Version {
    pub hash: VersionHash,
    pub(crate) component: Component,
}

/// The only imports a state machine may have: its own WIT world. No WASI,
/// so no clock, randomness, filesystem or environment.
const ALLOWED_IMPORT_PREFIX: &str = "wallet:statemachine/";

impl Version {
    /// Compiles `bytes` (through the engine's cache, if it has one) and
    /// refuses a component that imports anything but the wallet interfaces.
    pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Version> {
        let component = Component::new(engine, bytes).map_err(Error::Component)?;
        let forbidden: Vec<String> = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name)
            .filter(|name| !name.starts_with(ALLOWED_IMPORT_PREFIX))
            .map(String::from)
            .collect();
        if !forbidden.is_empty() {
            return Err(Error::ForbiddenImports { imports: forbidden });
        }
        Ok(Version {
            hash: VersionHash::of(bytes),
            component,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_and_round_trips_as_hex() {
        let hash = VersionHash::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash.to_string(), hex);
        assert_eq!(hex.parse::<VersionHash>().ok(), Some(hash));
        assert!("xyz".parse::<VersionHash>().is_err());
    }
}

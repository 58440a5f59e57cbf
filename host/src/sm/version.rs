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

/// A compiled state-machine component that passed the contract check.
#[derive(Clone)]
pub struct Version {
    pub hash: VersionHash,
    /// Whether it exports a migration (`wit/wallet.wit`, `migration`).
    pub migrates: bool,
    /// Whether it says whose each record is, so that a partition running
    /// it can split (`wit/wallet.wit`, `splitting`).
    pub splits: bool,
    pub(crate) component: Component,
}

/// What a state machine exports: the machine interface of this host's
/// contract (`wallet:statemachine/machine@2.x`).
const MACHINE_EXPORT: &str = "wallet:statemachine/machine@";
const MIGRATION_EXPORT: &str = "wallet:statemachine/migration@";
const SPLITTING_EXPORT: &str = "wallet:statemachine/splitting@";
const CONTRACT_MAJOR: &str = "2.";

impl Version {
    /// Compiles `bytes` (through the engine's cache, if it has one) and
    /// refuses a component that imports anything (no WASI, so no clock,
    /// randomness, filesystem or environment) or that implements another
    /// contract than this host runs.
    pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Version> {
        let component = Component::new(engine, bytes).map_err(Error::Component)?;
        let ty = component.component_type();
        // Imports from outside the wallet's interfaces are named first,
        // whatever contract the component claims.
        let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.into()).collect();
        let foreign: Vec<String> = imports
            .iter()
            .filter(|name| !name.starts_with("wallet:"))
            .cloned()
            .collect();
        if !foreign.is_empty() {
            return Err(Error::ForbiddenImports { imports: foreign });
        }
        let contract = ty
            .exports(engine)
            .find_map(|(name, _)| name.strip_prefix(MACHINE_EXPORT).map(String::from));
        if !contract
            .as_deref()
            .is_some_and(|v| v.starts_with(CONTRACT_MAJOR))
        {
            return Err(Error::UnsupportedContract {
                hash: VersionHash::of(bytes),
                found: contract.map(|v| format!("wallet:statemachine@{v}")),
            });
        }
        if !imports.is_empty() {
            return Err(Error::ForbiddenImports { imports });
        }
        let exports = |prefix: &str| ty.exports(engine).any(|(name, _)| name.starts_with(prefix));
        Ok(Version {
            hash: VersionHash::of(bytes),
            migrates: exports(MIGRATION_EXPORT),
            splits: exports(SPLITTING_EXPORT),
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

//! The state-machine release this host ships with, built reproducibly from
//! `guest-statemachine/` by `guest-statemachine/release.sh`.

const BYTES: &[u8] = include_bytes!("../../../guest-statemachine/releases/statemachine-2.5.0.wasm");

/// The release's hash as recorded beside it (`sha256sum` format).
pub const RELEASE_HASH_HEX: &str = {
    let line = include_str!("../../../guest-statemachine/releases/statemachine-2.5.0.wasm.sha256");
    match line.split_at_checked(64) {
        Some((hex, _)) => hex,
        None => panic!("the release's .sha256 file starts with 64 hex digits"),
    }
};

pub fn release_bytes() -> &'static [u8] {
    BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sm::VersionHash;

    #[test]
    fn embedded_bytes_match_the_recorded_hash() {
        assert_eq!(VersionHash::of(BYTES).to_string(), RELEASE_HASH_HEX);
    }
}

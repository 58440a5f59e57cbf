//! Account ids and the system accounts.

/// The longest account id, in bytes (every character is ASCII).
pub const ACCOUNT_ID_LEN_MAX: usize = 64;

/// The system account deposits come from and withdrawals go to. The node
/// opens it, as a system account, at its first start.
pub const BANK: &str = "external:bank";

/// Every system account the node opens by itself.
pub const SYSTEM_ACCOUNTS: [&str; 1] = [BANK];

/// The syntax of an account id, as the API documents it.
pub const ACCOUNT_ID_PATTERN: &str = "^[A-Za-z0-9_.:-]{1,64}$";

/// 1 to 64 characters of `A-Za-z0-9_.:-`.
pub fn is_valid(id: &str) -> bool {
    (1..=ACCOUNT_ID_LEN_MAX).contains(&id.len()) && id.bytes().all(is_id_byte)
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_alphabet_and_length() {
        assert!(is_valid("alice") && is_valid(BANK) && is_valid("a.b-c_d:9"));
        assert!(is_valid(&"x".repeat(64)));
        for bad in ["", "a b", "a/b", "é", "a\n", "Alice Smith", "a@b"] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        assert!(!is_valid(&"x".repeat(65)));
    }
}

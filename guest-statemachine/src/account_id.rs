/// Account ids (and owners) are 1 to 64 characters of `A-Za-z0-9_.:-`.
pub const ACCOUNT_ID_LEN_MAX: usize = 64;

pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ACCOUNT_ID_LEN_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet_and_length() {
        assert!(is_valid("alice") && is_valid("external:bank") && is_valid("a.b-c_d:9"));
        assert!(is_valid(&"x".repeat(64)));
        assert!(!is_valid("") && !is_valid(&"x".repeat(65)));
        assert!(!is_valid("a b") && !is_valid("a/b") && !is_valid("é"));
    }
}

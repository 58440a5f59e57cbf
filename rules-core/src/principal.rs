//! Who calls: the principal a token names, and the token's role. Every
//! command carries its caller, so the rules decide authorization from their
//! own state, on every replica and in every replay.

/// The longest principal, in bytes (every character is ASCII).
pub const PRINCIPAL_LEN_MAX: usize = 64;

/// The syntax of a principal (an account's owner, a token's name), as the
/// API documents it.
pub const PRINCIPAL_PATTERN: &str = "^[A-Za-z0-9_.:@-]{1,64}$";

/// The principal of commands the node makes itself (the system accounts at
/// first start; later, coordinator steps). Only the `System` role makes a
/// caller the system, and no token can hold that role.
pub const SYSTEM_PRINCIPAL: &str = "system";

/// 1 to 64 characters of `A-Za-z0-9_.:@-`.
pub fn is_valid(principal: &str) -> bool {
    (1..=PRINCIPAL_LEN_MAX).contains(&principal.len())
        && principal
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

/// What a caller may do; the rules decide with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything a person may do: open accounts, deposit, withdraw, move
    /// money out of any account.
    Admin,
    /// Moves money only out of accounts it owns.
    Client,
    /// Reads everything, writes nothing.
    Auditor,
    /// The node itself. No token holds this role.
    System,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Client, Role::Auditor, Role::System];

    /// The stable byte the codec uses.
    pub fn code(self) -> u8 {
        match self {
            Role::Admin => 0,
            Role::Client => 1,
            Role::Auditor => 2,
            Role::System => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Role> {
        Role::ALL.get(usize::from(code)).copied()
    }

    /// The snake_case name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Client => "client",
            Role::Auditor => "auditor",
            Role::System => "system",
        }
    }
}

/// The caller of one command. `S` is `&str` when borrowed from an encoded
/// batch, `String` when owned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caller<S> {
    pub role: Role,
    pub principal: S,
}

impl<S: AsRef<str>> Caller<S> {
    pub fn borrowed(&self) -> Caller<&str> {
        Caller {
            role: self.role,
            principal: self.principal.as_ref(),
        }
    }
}

impl Caller<&'static str> {
    /// The node itself.
    pub const SYSTEM: Caller<&'static str> = Caller {
        role: Role::System,
        principal: SYSTEM_PRINCIPAL,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals() {
        for ok in ["alice", "svc:payments", "ops@example.com", "a.b-c_d"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "Alice Smith",
            "a/b",
            "é",
            "tab\t",
            "x".repeat(65).as_str(),
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn role_codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_code(role.code()), Some(role));
        }
        assert_eq!(Role::from_code(4), None);
    }
}

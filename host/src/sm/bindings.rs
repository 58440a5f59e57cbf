//! The host side of `wit/`: the only `bindgen!` in the host. The generated
//! WIT types serve directly as the domain types (a second copy of every
//! command and event would only be converted back and forth); this module
//! adds the conversions and names they need.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "statemachine",
    imports: { default: trappable },
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq, Eq, Hash],
});

pub use wallet::statemachine::types::{
    AccountKind, BatchHeader, BatchOutput, Command, Event, EventRecord, OpenAccount, Outcome,
    Posting, Reason, Rejection, Transfer, Txid,
};

impl Txid {
    pub fn from_u128(id: u128) -> Self {
        Txid {
            hi: (id >> 64) as u64,
            lo: id as u64,
        }
    }

    pub fn as_u128(self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }
}

impl Reason {
    /// The stable snake_case code API clients see.
    pub fn code(self) -> &'static str {
        match self {
            Reason::AccountNotFound => "account_not_found",
            Reason::AccountExists => "account_exists",
            Reason::InvalidAccountId => "invalid_account_id",
            Reason::InvalidAmount => "invalid_amount",
            Reason::UnknownCurrency => "unknown_currency",
            Reason::SameAccount => "same_account",
            Reason::InsufficientFunds => "insufficient_funds",
            Reason::Overflow => "overflow",
            Reason::NotASystemAccount => "not_a_system_account",
            Reason::IdempotencyConflict => "idempotency_conflict",
            Reason::TransferCancelled => "transfer_cancelled",
            Reason::TransferConfirmed => "transfer_confirmed",
            Reason::TransferNotFound => "transfer_not_found",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txid_round_trips_through_u128() {
        for id in [0, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            assert_eq!(Txid::from_u128(id).as_u128(), id);
        }
        assert_eq!(Txid::from_u128(1 << 64), Txid { hi: 1, lo: 0 });
    }
}

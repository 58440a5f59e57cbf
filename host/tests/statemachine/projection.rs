//! Balances rebuilt from events alone, the way a read model would, to check
//! the invariants on what the guest said rather than on what it stored.

use std::collections::BTreeMap;
use wallet_core::{Event, Posting};

#[derive(Default)]
pub struct Projection {
    /// (account, currency) -> (available, reserved)
    pub balances: BTreeMap<(String, String), (i128, i128)>,
    /// currency -> money that left for (+) or arrived from (-) elsewhere
    pub in_flight: BTreeMap<String, i128>,
}

impl Projection {
    pub fn apply(&mut self, event: &Event<String>) {
        match event {
            Event::Debited(p) => self.shift(p, -1, 0, 0),
            Event::Credited(p) => self.shift(p, 1, 0, 0),
            Event::FundsReserved(p) => self.shift(p, -1, 1, 0),
            Event::ReservationReleased(p) => self.shift(p, 1, -1, 0),
            Event::ReservationSettled(p) => self.shift(p, 0, -1, 1),
            Event::Sent(p) => self.shift(p, -1, 0, 1),
            Event::Received(p) | Event::PendingCredited(p) | Event::Refunded(p) => {
                self.shift(p, 1, 0, -1)
            }
            // A split's, written by the host, never by the rules.
            Event::MovedOut(p) => self.shift(p, -1, 0, 1),
            Event::ReservationMovedOut(p) => self.shift(p, 0, -1, 1),
            Event::MovedIn(p) => self.shift(p, 1, 0, -1),
            Event::ReservationMovedIn(p) => self.shift(p, 0, 1, -1),
            Event::AccountOpened(_)
            | Event::AccountMovedIn(_)
            | Event::CreditPending(_)
            | Event::PendingDropped(_)
            | Event::CancelRecorded(_)
            | Event::TransferRejected { .. } => {}
        }
    }

    fn shift(&mut self, p: &Posting<String>, available: i128, reserved: i128, in_flight: i128) {
        assert!(p.amount > 0, "events carry positive amounts: {p:?}");
        let amount = i128::from(p.amount);
        let entry = self
            .balances
            .entry((p.account.clone(), p.currency.to_string()))
            .or_default();
        entry.0 += available * amount;
        entry.1 += reserved * amount;
        *self.in_flight.entry(p.currency.to_string()).or_default() += in_flight * amount;
    }

    /// Per currency: available + reserved + in flight.
    pub fn sums(&self) -> BTreeMap<String, i128> {
        let mut sums = self.in_flight.clone();
        for ((_, currency), (available, reserved)) in &self.balances {
            *sums.entry(currency.clone()).or_default() += available + reserved;
        }
        sums
    }
}

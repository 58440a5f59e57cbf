//! The execute answer, written as the calls run: the outcomes section is
//! laid out first and filled in place, events are appended as they happen,
//! and the writes follow at the end (see `wallet_core::codec`).

use alloc::vec::Vec;
use wallet_core::Event;
use wallet_core::codec;
use wallet_core::reason::{Outcome, outcome_code};

pub struct Output {
    bytes: Vec<u8>,
    outcomes_at: usize,
    events_count_at: usize,
    events: u32,
}

impl Output {
    pub fn new(calls: usize) -> Self {
        let mut bytes = Vec::with_capacity(16 + calls * 160);
        codec::put_u32(
            &mut bytes,
            u32::try_from(calls).expect("batches are bounded"),
        );
        let outcomes_at = bytes.len();
        bytes.resize(outcomes_at + calls, 0);
        let events_count_at = bytes.len();
        codec::put_u32(&mut bytes, 0);
        Output {
            bytes,
            outcomes_at,
            events_count_at,
            events: 0,
        }
    }

    pub fn set_outcome(&mut self, call: usize, outcome: Outcome) {
        self.bytes[self.outcomes_at + call] = outcome_code(outcome);
    }

    pub fn event(&mut self, call: usize, event: &Event<&str>) {
        codec::put_u32(
            &mut self.bytes,
            u32::try_from(call).expect("batches are bounded"),
        );
        codec::put_event(&mut self.bytes, event).expect("events name valid accounts");
        self.events += 1;
    }

    /// The answer, with the writes section `write` appends.
    pub fn finish(mut self, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        codec::patch_u32(&mut self.bytes, self.events_count_at, self.events);
        write(&mut self.bytes);
        self.bytes
    }
}

//! The partition map: which partition holds an account. Accounts are
//! spread by a stable hash (CRC-32C of the id) over `count` equal ranges
//! of the hash space, so that a partition's range can later be halved
//! without moving any other partition's accounts.
//!
//! The system accounts (`external:bank`) have a shard in every partition,
//! so that deposits and withdrawals stay inside the user's partition; an
//! account an admin opens as a system account gets a shard in every
//! partition too. Per currency, the shards and every other balance still
//! sum to zero.

use wallet_core::account::SYSTEM_ACCOUNTS;
use wallet_core::{AccountKind, Command};

/// The most partitions a node runs.
pub const PARTITIONS_MAX: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionMap {
    count: u32,
}

/// Where one call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// In one partition, atomically (the fast path).
    One(u32),
    /// In every partition (a system account's shards); the answer is the
    /// one from the given partition.
    Every(u32),
    /// Across partitions, coordinated by the source's leader.
    Across { source: u32 },
}

impl PartitionMap {
    pub fn new(count: u32) -> PartitionMap {
        assert!(
            (1..=PARTITIONS_MAX).contains(&count),
            "1 to {PARTITIONS_MAX} partitions"
        );
        PartitionMap { count }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The partition whose hash range holds `account`.
    pub fn of(&self, account: &str) -> u32 {
        let hash = u64::from(crc32c::crc32c(account.as_bytes()));
        ((hash * u64::from(self.count)) >> 32) as u32
    }

    /// Where `account`'s money is for a transfer: `None` for a sharded
    /// system account, which has a shard wherever the other side is.
    fn home(&self, account: &str) -> Option<u32> {
        (!SYSTEM_ACCOUNTS.contains(&account)).then(|| self.of(account))
    }

    /// Where a call runs.
    pub fn target<S: AsRef<str>>(&self, command: &Command<S>) -> Target {
        use Command as C;
        match command {
            C::OpenAccount(open) => {
                let home = self.of(open.account.as_ref());
                match open.kind {
                    AccountKind::System if self.count > 1 => Target::Every(home),
                    _ => Target::One(home),
                }
            }
            // A deposit's source and a withdrawal's destination must be
            // system accounts, which have a shard in the other side's
            // partition.
            C::Deposit(t) => Target::One(self.of(t.to.as_ref())),
            C::Withdraw(t) => Target::One(self.of(t.from.as_ref())),
            C::Transfer(t) => match (self.home(t.from.as_ref()), self.home(t.to.as_ref())) {
                (Some(from), Some(to)) if from != to => Target::Across { source: from },
                (Some(p), _) | (None, Some(p)) => Target::One(p),
                (None, None) => Target::One(0),
            },
            // The coordinator's own steps are sent to their partition
            // directly, never through the map.
            _ => Target::One(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wallet_core::{Currency, Transfer, Txid};

    fn transfer(from: &str, to: &str) -> Command<&'static str> {
        let (from, to) = (from.to_owned().leak(), to.to_owned().leak());
        Command::Transfer(Transfer {
            id: Txid(1),
            from,
            to,
            amount: 1,
            currency: Currency(*b"EUR"),
        })
    }

    #[test]
    fn accounts_spread_evenly_and_stably() {
        let map = PartitionMap::new(4);
        let mut counts = [0u32; 4];
        for i in 0..40_000 {
            counts[map.of(&format!("user-{i}")) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        // The hash is part of the data's format: it may never change.
        assert_eq!(map.of("alice"), PartitionMap::new(4).of("alice"));
        assert_eq!(crc32c::crc32c(b"alice"), 0xFB02_028E);
    }

    #[test]
    fn halving_a_range_moves_only_that_range() {
        let (two, four) = (PartitionMap::new(2), PartitionMap::new(4));
        for i in 0..1_000 {
            let id = format!("acct-{i}");
            assert_eq!(four.of(&id) / 2, two.of(&id), "{id}");
        }
    }

    #[test]
    fn the_bank_is_wherever_the_other_side_is() {
        let map = PartitionMap::new(4);
        let alice = map.of("alice");
        assert_eq!(
            map.target(&transfer("external:bank", "alice")),
            Target::One(alice)
        );
        assert_eq!(
            map.target(&transfer("alice", "external:bank")),
            Target::One(alice)
        );
        let other = (0..100)
            .map(|i| format!("u{i}"))
            .find(|id| map.of(id) != alice)
            .expect("another partition");
        assert_eq!(
            map.target(&transfer("alice", &other)),
            Target::Across { source: alice }
        );
        assert_eq!(
            PartitionMap::new(1).target(&transfer("alice", &other)),
            Target::One(0)
        );
    }
}

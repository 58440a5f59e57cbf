//! The partition map: which partition holds an account. Accounts are
//! spread by a stable hash (CRC-32C of the id) over ranges of the hash
//! space, one per partition: `count` equal ones at first, and a partition's
//! range can be halved (a split, the upper half to a new partition) without
//! moving any other partition's accounts.
//!
//! The system accounts (`external:bank`) have a shard in every partition,
//! so that deposits and withdrawals stay inside the user's partition; an
//! account an admin opens as a system account gets a shard in every
//! partition too. Per currency, the shards and every other balance still
//! sum to zero.
//!
//! A partition applies a call only if it holds every account the call
//! acts on there (`Holdings`), checked as the call is applied: once a
//! partition's range can move, a call routed by a stale map, or a
//! coordinator's step still on its way, is refused (`Reply::Moved`) by
//! the partition that no longer holds its account instead of acting on
//! money that is no longer there.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use wallet_core::account::SYSTEM_ACCOUNTS;
use wallet_core::codec::{self, Calls};
use wallet_core::{AccountKind, Call, Command};

/// The most partitions a node runs.
pub const PARTITIONS_MAX: u32 = 64;

/// The size of the hash space (a CRC-32C).
const SPACE: u64 = 1 << 32;

/// The hash that places `account`. Part of the data's format: it may never
/// change.
pub fn hash(account: &str) -> u32 {
    crc32c::crc32c(account.as_bytes())
}

/// A range of the hash space: `start..end`, with `end` at most 2^32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub start: u32,
    pub end: u64,
}

impl Range {
    pub const WHOLE: Range = Range {
        start: 0,
        end: SPACE,
    };

    pub fn contains(&self, hash: u32) -> bool {
        self.start <= hash && u64::from(hash) < self.end
    }

    /// Its two halves, lower then upper; `None` for a range of one hash.
    pub fn halves(&self) -> Option<(Range, Range)> {
        let middle = u64::from(self.start) + (self.end - u64::from(self.start)) / 2;
        let middle = u32::try_from(middle).expect("inside the space");
        (middle > self.start).then_some((
            Range {
                start: self.start,
                end: u64::from(middle),
            },
            Range {
                start: middle,
                end: self.end,
            },
        ))
    }
}

/// Each partition's range, by partition id; together they tile the hash
/// space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMap {
    ranges: Vec<Range>,
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
    /// `count` partitions of equal ranges: partition i holds the hashes h
    /// with i <= h * count / 2^32 < i + 1.
    pub fn new(count: u32) -> PartitionMap {
        assert!(
            (1..=PARTITIONS_MAX).contains(&count),
            "1 to {PARTITIONS_MAX} partitions"
        );
        let count = u64::from(count);
        let start = |i: u64| (i * SPACE).div_ceil(count);
        let ranges = (0..count)
            .map(|i| Range {
                start: u32::try_from(start(i)).expect("inside the space"),
                end: start(i + 1),
            })
            .collect();
        PartitionMap { ranges }
    }

    pub fn count(&self) -> u32 {
        u32::try_from(self.ranges.len()).expect("at most PARTITIONS_MAX")
    }

    /// The range `partition` holds.
    pub fn range(&self, partition: u32) -> Option<Range> {
        self.ranges.get(partition as usize).copied()
    }

    /// The map after `parent` splits: the upper half of its range goes to
    /// a new partition, the next id, which this answers with. `None` if
    /// the map is full or the range is a single hash.
    pub fn split(&self, parent: u32) -> Option<(PartitionMap, u32)> {
        let (lower, upper) = self.range(parent)?.halves()?;
        let child = self.count();
        if child >= PARTITIONS_MAX {
            return None;
        }
        let mut ranges = self.ranges.clone();
        ranges[parent as usize] = lower;
        ranges.push(upper);
        Some((PartitionMap { ranges }, child))
    }

    /// The partition whose hash range holds `account`.
    pub fn of(&self, account: &str) -> u32 {
        let hash = hash(account);
        let found = self.ranges.iter().position(|range| range.contains(hash));
        u32::try_from(found.expect("the ranges tile the hash space")).expect("few partitions")
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
                    AccountKind::System if self.count() > 1 => Target::Every(home),
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

/// The accounts one partition holds: those in its range of the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holdings {
    partition: u32,
    range: Range,
}

/// A batch as the partition may apply it: the calls it holds the accounts
/// of, and the indices (in the batch as sent) of those it does not.
#[derive(Debug, PartialEq, Eq)]
pub struct Fenced<'a> {
    pub calls: Cow<'a, [u8]>,
    pub moved: Vec<usize>,
}

impl Holdings {
    /// What `partition` holds by `map`.
    pub fn new(map: &PartitionMap, partition: u32) -> Holdings {
        let range = map.range(partition).expect("a partition of the map");
        Holdings { partition, range }
    }

    /// What `partition` holds when its range is `range` (after a split).
    pub fn from_range(partition: u32, range: Range) -> Holdings {
        Holdings { partition, range }
    }

    pub fn partition(&self) -> u32 {
        self.partition
    }

    pub fn range(&self) -> Range {
        self.range
    }

    /// Whether `account`'s money may be here: a sharded system account's
    /// is everywhere.
    pub fn holds(&self, account: &str) -> bool {
        SYSTEM_ACCOUNTS.contains(&account) || self.range.contains(hash(account))
    }

    /// Whether this partition holds every account `call` acts on here; a
    /// coordinator's step names its account as `home`, the account it
    /// acts on, which a step that carries only a transaction id cannot.
    pub fn admits(&self, call: &Call<&str>, home: Option<&str>) -> bool {
        use Command as C;
        let named: [Option<&str>; 2] = match &call.command {
            C::OpenAccount(open) => match open.kind {
                AccountKind::System => [None, None],
                _ => [Some(open.account), None],
            },
            C::Transfer(t) => [Some(t.from), Some(t.to)],
            // As routed: by the user's side (the other is a system account).
            C::Deposit(t) | C::TccPlacePending(t) | C::SagaCredit(t) => [Some(t.to), None],
            C::Withdraw(t) | C::TccReserve(t) | C::SagaDebit(t) => [Some(t.from), None],
            C::TccSettle(_)
            | C::TccCredit(_)
            | C::TccRelease(_)
            | C::TccDropPending(_)
            | C::SagaRefund(_) => [None, None],
        };
        named
            .into_iter()
            .chain([home])
            .flatten()
            .all(|account| self.holds(account))
    }

    /// `calls` (an encoded batch) without the calls this partition does
    /// not hold the accounts of; `homes` pairs a call's index with its
    /// home. A batch that does not decode is left whole, for the rules to
    /// fail the same way everywhere.
    pub fn fence<'a>(&self, calls: &'a [u8], homes: &[(u32, String)]) -> Fenced<'a> {
        let whole = || Fenced {
            calls: Cow::Borrowed(calls),
            moved: Vec::new(),
        };
        // One partition holds every account.
        if self.range == Range::WHOLE {
            return whole();
        }
        let Ok(decoded) = codec::calls(calls) else {
            return whole();
        };
        debug_assert!(
            homes.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "homes in call order, one per call"
        );
        let mut homes = homes.iter().peekable();
        let moved: Vec<usize> = decoded
            .iter()
            .enumerate()
            .filter(|(i, call)| {
                let home = homes
                    .next_if(|(at, _)| *at as usize == *i)
                    .map(|(_, home)| home.as_str());
                !self.admits(call, home)
            })
            .map(|(i, _)| i)
            .collect();
        if moved.is_empty() {
            return whole();
        }
        let mut kept = Calls::with_capacity(calls.len());
        for (i, call) in decoded.iter().enumerate() {
            if moved.binary_search(&i).is_err() {
                kept.push(call).expect("a decoded call encodes again");
            }
        }
        Fenced {
            calls: Cow::Owned(kept.into_bytes()),
            moved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wallet_core::{Currency, OpenAccount, Transfer, Txid};

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
        assert_eq!(hash("alice"), 0xFB02_028E);
    }

    #[test]
    fn equal_ranges_place_accounts_as_the_first_formula_did() {
        // Data directories written before the ranges placed account hash
        // h in partition h * count / 2^32: they must find every account
        // where it is.
        for count in 1..=PARTITIONS_MAX {
            let map = PartitionMap::new(count);
            assert_eq!(map.range(0).map(|r| r.start), Some(0));
            assert_eq!(map.range(count - 1).map(|r| r.end), Some(SPACE));
            for i in 0..count {
                let range = map.range(i).expect("a range each");
                // At both edges of each range, and inside.
                for h in [
                    range.start,
                    (range.end - 1) as u32,
                    range.start / 2 + (range.end / 2) as u32,
                ] {
                    let formula = ((u64::from(h) * u64::from(count)) >> 32) as u32;
                    assert_eq!(formula, i, "hash {h:#x} of {count} partitions");
                }
            }
        }
    }

    #[test]
    fn a_split_moves_the_upper_half_of_one_partition_and_nothing_else() {
        let map = PartitionMap::new(3);
        let (split, child) = map.split(1).expect("splits");
        assert_eq!((child, split.count()), (3, 4));
        let mut moved = 0;
        for i in 0..3_000 {
            let id = format!("acct-{i}");
            let (before, after) = (map.of(&id), split.of(&id));
            if before == after {
                continue;
            }
            assert_eq!((before, after), (1, 3), "{id}");
            assert!(hash(&id) >= split.range(3).expect("the child's").start);
            moved += 1;
        }
        assert!(
            (400..600).contains(&moved),
            "about half of a third: {moved}"
        );
        let full = PartitionMap::new(PARTITIONS_MAX);
        assert!(full.split(0).is_none(), "no more than PARTITIONS_MAX");
    }

    #[test]
    fn a_range_halves_into_two_that_tile_it() {
        let (lower, upper) = Range::WHOLE.halves().expect("halves");
        assert_eq!((lower.start, lower.end), (0, 1 << 31));
        assert_eq!((upper.start, upper.end), (1 << 31, SPACE));
        let odd = Range { start: 10, end: 13 };
        let (lower, upper) = odd.halves().expect("halves");
        assert_eq!((lower.end, upper.start as u64, upper.end), (11, 11, 13));
        assert!(Range { start: 7, end: 8 }.halves().is_none());
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

    fn held_by(map: &PartitionMap, partition: u32) -> &'static str {
        (0..)
            .map(|i| format!("acct-{i}"))
            .find(|id| map.of(id) == partition)
            .expect("an account")
            .leak()
    }

    #[test]
    fn a_call_is_admitted_where_its_accounts_are() {
        let map = PartitionMap::new(2);
        let zero = Holdings::new(&map, 0);
        let (mine, other) = (held_by(&map, 0), held_by(&map, 1));
        let call = |command| Call {
            caller: wallet_core::Caller::SYSTEM,
            command,
        };
        let t = |from, to| Transfer {
            id: Txid(1),
            from,
            to,
            amount: 1,
            currency: Currency(*b"EUR"),
        };
        let admits = |command, home| zero.admits(&call(command), home);
        assert!(admits(Command::Transfer(t(mine, "external:bank")), None));
        assert!(!admits(Command::Transfer(t(mine, other)), None));
        // A deposit and a withdrawal run by the user's side; a try by its
        // source, a placeholder by its destination.
        assert!(admits(Command::Deposit(t("some:system", mine)), None));
        assert!(!admits(Command::Withdraw(t(other, "external:bank")), None));
        assert!(admits(Command::TccReserve(t(mine, other)), None));
        assert!(!admits(Command::TccPlacePending(t(mine, other)), None));
        // A step that names only its transaction goes by its home.
        assert!(admits(Command::TccSettle(Txid(1)), Some(mine)));
        assert!(!admits(Command::TccCredit(Txid(1)), Some(other)));
        let system = OpenAccount {
            account: other,
            owner: None,
            kind: AccountKind::System,
        };
        assert!(admits(Command::OpenAccount(system), None));
    }

    #[test]
    fn a_fenced_batch_keeps_the_calls_it_holds_in_order() {
        let map = PartitionMap::new(2);
        let (mine, other) = (held_by(&map, 0), held_by(&map, 1));
        let settle = |id| Call {
            caller: wallet_core::Caller::SYSTEM,
            command: Command::TccSettle(Txid(id)),
        };
        let mut calls = Calls::new();
        for call in [
            settle(0),
            settle(1),
            Call {
                caller: wallet_core::Caller::SYSTEM,
                command: transfer(mine, other),
            },
            settle(3),
        ] {
            calls.push(&call).expect("encodes");
        }
        let bytes = calls.into_bytes();
        let homes = [(1, other.to_owned()), (3, mine.to_owned())];
        let fenced = Holdings::new(&map, 0).fence(&bytes, &homes);
        assert_eq!(fenced.moved, [1, 2]);
        let kept: Vec<_> = codec::calls(&fenced.calls)
            .expect("decodes")
            .into_iter()
            .map(|call| call.command.txid())
            .collect();
        assert_eq!(kept, [Some(Txid(0)), Some(Txid(3))]);
        // Everything is held where there is one partition.
        let alone = Holdings::new(&PartitionMap::new(1), 0).fence(&bytes, &homes);
        assert!(alone.moved.is_empty() && alone.calls == bytes);
    }
}

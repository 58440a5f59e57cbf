//! What a split does to a partition's state: the accounts whose hashes lie
//! in the moving range leave for a new partition with every record of
//! theirs, as the version running at the split says whose each record is
//! (`wit/wallet.wit`, `splitting`). A function of the state alone, so that
//! every replica, and every audit, derives the same two states.
//!
//! - An account's own record, and the records the version says are its,
//!   move (the parent deletes them); the money on the account leaves the
//!   parent through its in-flight sum (`moved_out`, `reservation_moved_out`)
//!   and arrives in the child the same way (`account_moved_in`, then
//!   `moved_in`, `reservation_moved_in`), so each partition's books still
//!   sum to zero.
//! - A record of no account (a step that names only a transaction id, an
//!   early cancel), or of a system account (whose shards are everywhere),
//!   is copied: both partitions keep it, so a step reaching either finds
//!   what it finds today, and the fence decides which may act.
//! - A system account's own record (its shard) stays: the child opens
//!   shards of its own.
//! - The coordinator's journal records of transfers whose source moves go
//!   with it, so that the child's leader resumes them.

use crate::Result;
use crate::coordinator::InFlight;
use crate::node::{Range, hash};
use crate::sm::{BatchFailure, Runtime, VersionHash, for_each_owner};
use crate::store::{Seed, Store, StoreOptions};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use wallet_core::codec::{self, Belongs, Holding};
use wallet_core::{AccountKind, Event, Posting, Txid, account::SYSTEM_ACCOUNTS};

/// What a partition holds after its splits, in its replicated state: its
/// range, and the partitions split off it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splits {
    pub range: Range,
    pub children: Vec<Child>,
}

/// A partition split off another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub partition: u32,
    /// The range it took.
    pub range: Range,
    /// The parent's log index of the split.
    pub index: u64,
    /// The split's id, in the postings of the money that moved.
    pub id: u128,
}

/// What a split entry did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SplitOutcome {
    /// The child took the upper half of the range (an entry naming a child
    /// this partition already has answers what that split did).
    Split(Child),
    Refused(SplitRefused),
}

/// Why a split changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SplitRefused {
    #[error("the entry names the partition itself as its child")]
    ChildIsParent,
    #[error("no version runs here yet")]
    NoVersion,
    #[error("the partition's range is a single hash")]
    Indivisible,
    /// Releases before 2.4.0.
    #[error("version {0} does not say whose its records are: deploy rules 2.4.0 or later first")]
    VersionCannotSplit(VersionHash),
    #[error("version {0} is scheduled to run from a later index: split after it")]
    ActivationPending(VersionHash),
    #[error("the version failed while saying whose its records are: {0}")]
    VersionFailed(String),
    /// The child would start without it: its group is the parent's voters.
    #[error(
        "node {0} is a learner of the partition (a replica being added or removed): finish that change, then split"
    )]
    ReplicaMoving(u64),
}

/// A state record: key and value, as the store holds them.
pub type Record = (Box<[u8]>, Box<[u8]>);

/// A split's outcome for the two partitions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Derived {
    /// The keys the parent deletes: every record that moved.
    pub parent_deletes: Vec<Box<[u8]>>,
    /// The parent's events: the money that left.
    pub parent_events: Vec<Event<String>>,
    /// The child's whole state: the records that moved and those copied.
    pub child_records: Vec<Record>,
    /// The child's first events: the accounts and money that arrived.
    pub child_events: Vec<Event<String>>,
    /// The journal records that move, by transaction id.
    pub journal: Vec<InFlight>,
}

/// The two halves of `range` a split at `index` makes, or why it is
/// refused: a range of one hash, a version scheduled to run from a later
/// index, or a version (`runtime`, the one running at `index`) that cannot
/// say whose its records are. The state machine and the audit decide
/// alike.
pub fn plan(
    range: Range,
    schedule: &crate::sm::Schedule,
    index: u64,
    runtime: &Runtime,
) -> std::result::Result<(Range, Range), SplitRefused> {
    let halves = range.halves().ok_or(SplitRefused::Indivisible)?;
    if let Some(later) = schedule.activated_after(index) {
        return Err(SplitRefused::ActivationPending(later));
    }
    if !runtime.splits() {
        return Err(SplitRefused::VersionCannotSplit(runtime.version().hash));
    }
    Ok(halves)
}

/// Splits a state (every record, in key order) and a journal: what leaves
/// for `moving`, as `runtime` (the version running at the split, which must
/// split) says whose each record is; `id` names the split in its postings.
pub fn derive<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    runtime: &mut Runtime,
    records: impl IntoIterator<Item = Result<(K, V)>>,
    journal: Vec<InFlight>,
    moving: Range,
    id: Txid,
) -> Result<Result<Derived, BatchFailure>> {
    // Accounts of the system kind have shards everywhere, those an admin
    // opened too; their records come first (`a` sorts before the tables
    // of receipts, phases and counters).
    let mut system: Vec<String> = Vec::new();
    let is_system = |system: &[String], account: &str| {
        SYSTEM_ACCOUNTS.contains(&account) || system.iter().any(|s| s == account)
    };
    let mut derived = Derived::default();
    let walked = for_each_owner(runtime, records, |key, value, belongs| {
        let record = || (Box::from(key), Box::from(value));
        let moves = |account: &str| !is_system(&system, account) && moving.contains(hash(account));
        match belongs {
            Belongs::ToNone => derived.child_records.push(record()),
            Belongs::To(account) if !moves(account) => {
                if is_system(&system, account) {
                    derived.child_records.push(record());
                }
            }
            Belongs::To(_) => {
                derived.child_records.push(record());
                derived.parent_deletes.push(Box::from(key));
            }
            Belongs::Account { open, .. } if open.kind == AccountKind::System => {
                system.push(open.account.to_owned());
            }
            Belongs::Account { open, .. } if !moves(open.account) => {}
            Belongs::Account { open, balances } => {
                derived.child_records.push(record());
                derived.parent_deletes.push(Box::from(key));
                derived
                    .child_events
                    .push(Event::AccountMovedIn(open.to_owned()));
                for holding in balances {
                    move_money(&mut derived, id, open.account, holding);
                }
            }
        }
        Ok(())
    })?;
    if let Err(failure) = walked {
        return Ok(Err(failure));
    }
    let moves = |account: &str| !is_system(&system, account) && moving.contains(hash(account));
    derived.journal = journal.into_iter().filter(|t| moves(&t.from)).collect();
    Ok(Ok(derived))
}

/// Where a replica writes the first state of a partition split off its
/// own: beside its own directory, as `partition-<child>`, which the node
/// opens once the parent committed the split.
#[derive(Clone, Debug)]
pub struct Births {
    /// The node's data directory.
    pub dir: PathBuf,
    pub options: StoreOptions,
}

/// A partition's directory in the node's data directory.
pub fn partition_dir(data_dir: &std::path::Path, partition: u32) -> PathBuf {
    data_dir.join(format!("partition-{partition}"))
}

impl Births {
    /// Writes the child's first state, whole or not at all. A directory
    /// the child already has is one a crash left before the parent
    /// committed the split (it never opened: it has no Raft log), and is
    /// written again. One that opened is left as it is: the child opened
    /// from this same state before a crash made the parent apply the
    /// split again, or this replica (not a voter of the parent) opened it
    /// empty when the map routed to it, to take the child's state from its
    /// group.
    pub fn seed(&self, seed: &Seed) -> Result<()> {
        let done = partition_dir(&self.dir, seed.partition);
        let building = done.with_extension("seed");
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| crate::Error::DataDir { path, source }
        };
        if done.join("raft").exists() {
            tracing::info!(partition = seed.partition, dir = %done.display(), "the child runs here already");
            return Ok(());
        }
        for stale in [&building, &done] {
            if stale.exists() {
                std::fs::remove_dir_all(stale).map_err(io(stale))?;
            }
        }
        Store::seed(&building.join("state"), &self.options, seed)?;
        std::fs::rename(&building, &done).map_err(io(&building))?;
        crate::log::sync_dir(&self.dir)
    }
}

impl Derived {
    /// The accounts that moved.
    pub fn accounts(&self) -> u64 {
        let arrived = self.child_events.iter();
        arrived
            .filter(|e| matches!(e, Event::AccountMovedIn(_)))
            .count() as u64
    }
}

/// Events as an event record holds them: each `command u32` (0: a split
/// runs no command) and the event, and where each starts.
pub fn encode_events(events: &[Event<String>]) -> (Vec<u8>, Vec<u32>) {
    let mut bytes = Vec::new();
    let mut offsets = Vec::with_capacity(events.len());
    for event in events {
        offsets.push(u32::try_from(bytes.len()).expect("a split's events are bounded"));
        codec::put_u32(&mut bytes, 0);
        codec::put_event(&mut bytes, event).expect("the state's ids encode");
    }
    (bytes, offsets)
}

/// The events of one currency's money leaving with `account`.
fn move_money(derived: &mut Derived, id: Txid, account: &str, holding: Holding) {
    let posting = |amount| Posting {
        id,
        account: account.to_owned(),
        currency: holding.currency,
        amount,
    };
    if holding.available != 0 {
        let moved = posting(holding.available);
        derived.parent_events.push(Event::MovedOut(moved.clone()));
        derived.child_events.push(Event::MovedIn(moved));
    }
    if holding.reserved != 0 {
        let moved = posting(holding.reserved);
        derived
            .parent_events
            .push(Event::ReservationMovedOut(moved.clone()));
        derived.child_events.push(Event::ReservationMovedIn(moved));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::Mode;
    use crate::sm::{BatchHeader, Executed, MemoryState, Version, new_engine, release_bytes};
    use std::collections::BTreeMap;
    use wallet_core::codec::Calls;
    use wallet_core::{Call, Caller, Command, Currency, OpenAccount, Role, Transfer};

    const USD: Currency = Currency(*b"USD");
    /// The upper half of the hash space moves.
    const MOVING: Range = Range {
        start: 1 << 31,
        end: 1 << 32,
    };

    fn runtime() -> Runtime {
        let engine = new_engine(None).expect("engine");
        let version = Version::compile(&engine, release_bytes()).expect("the release compiles");
        Runtime::new(&engine, version).expect("instantiates")
    }

    /// An account id whose hash is (or is not) in the moving range.
    fn account(n: usize, moves: bool) -> String {
        (0..)
            .map(|i| format!("user-{i}"))
            .filter(|id| MOVING.contains(hash(id)) == moves)
            .nth(n)
            .expect("an id")
    }

    fn run(
        rt: &mut Runtime,
        state: &mut MemoryState,
        index: u64,
        calls: &[Call<&str>],
    ) -> Vec<Event<String>> {
        let mut batch = Calls::new();
        for call in calls {
            batch.push(call).expect("encodes");
        }
        let header = BatchHeader {
            log_index: index,
            timestamp_ms: 1_700_000_000_000,
            partition: 0,
        };
        match rt
            .execute(header, &batch.into_bytes(), state)
            .expect("no host failure")
        {
            Executed::Applied(answer) => {
                state.apply(answer.writes());
                answer
                    .event_records()
                    .map(|r| r.expect("decodes").1.to_owned())
                    .collect()
            }
            Executed::Failed(failure) => panic!("{failure:?}"),
        }
    }

    /// Per (account, currency): available, reserved, in flight.
    type Totals = BTreeMap<(String, Currency), [i128; 3]>;

    fn fold(totals: &mut Totals, events: &[Event<String>]) {
        for (posting, effect) in events.iter().filter_map(Event::effect) {
            let total = totals
                .entry((posting.account.clone(), posting.currency))
                .or_default();
            let amount = i128::from(posting.amount);
            total[0] += amount * i128::from(effect.available);
            total[1] += amount * i128::from(effect.reserved);
            total[2] += amount * i128::from(effect.in_flight);
        }
    }

    fn sum(totals: &Totals) -> i128 {
        totals.values().flatten().sum()
    }

    #[test]
    fn a_split_moves_each_account_with_its_records_and_money_and_both_sides_balance() {
        let mut rt = runtime();
        let mut state = MemoryState::default();
        let (stays, moves, overdrawn) = (account(0, false), account(0, true), account(1, true));
        // A system account an admin opened, whose hash is in the moving
        // range: a shard, which stays.
        let treasury = account(2, true);
        let admin = || Caller {
            role: Role::Admin,
            principal: "admin",
        };
        let by = |command| Call {
            caller: admin(),
            command,
        };
        let open = |account, kind| Call {
            caller: admin(),
            command: Command::OpenAccount(OpenAccount {
                account,
                owner: None,
                kind,
            }),
        };
        let t = |id, from, to, amount| Transfer {
            id: Txid(id),
            from,
            to,
            amount,
            currency: USD,
        };
        let bank = "external:bank";
        let (stays, moves, overdrawn) = (stays.as_str(), moves.as_str(), overdrawn.as_str());
        let treasury = treasury.as_str();
        let mut events = run(
            &mut rt,
            &mut state,
            1,
            &[
                open(bank, AccountKind::System),
                open(treasury, AccountKind::System),
                open(stays, AccountKind::Standard),
                open(moves, AccountKind::Standard),
                open(overdrawn, AccountKind::Credit(500)),
                by(Command::Deposit(t(1, bank, stays, 1_000))),
                by(Command::Deposit(t(2, bank, moves, 700))),
                // Inside today's partition, across after the split.
                by(Command::Transfer(t(3, stays, moves, 100))),
                by(Command::Transfer(t(4, overdrawn, stays, 40))),
                // A try in flight from the account that moves.
                by(Command::TccReserve(t(5, moves, stays, 30))),
                // A cancel before its try: no account's.
                Call {
                    caller: Caller::SYSTEM,
                    command: Command::TccRelease(Txid(6)),
                },
            ],
        );
        assert!(
            !events.iter().any(|e| e.name() == "transfer_rejected"),
            "{events:?}"
        );
        let in_flight = |id, from: &str| InFlight {
            mode: Mode::Tcc,
            id,
            from: from.to_owned(),
            to: stays.to_owned(),
            amount: 30,
            currency: USD.0,
            started_ms: 0,
        };
        let journal = vec![in_flight(5, moves), in_flight(7, stays)];
        let before: Vec<Record> = state
            .records()
            .into_iter()
            .map(|(k, v)| (Box::from(k), Box::from(v)))
            .collect();
        let derived = derive(
            &mut rt,
            before.iter().map(|(k, v)| Ok((k, v))),
            journal,
            MOVING,
            Txid(99),
        )
        .expect("no host failure")
        .expect("the release splits");

        // The journal record of the transfer whose source moved goes.
        assert_eq!(derived.journal, [in_flight(5, moves)]);
        // Money: each side sums to zero; what moved is all in the child.
        let mut parent = Totals::new();
        fold(&mut parent, &events);
        let original = parent.clone();
        fold(&mut parent, &derived.parent_events);
        let mut child = Totals::new();
        fold(&mut child, &derived.child_events);
        assert_eq!((sum(&parent), sum(&child)), (0, 0));
        for account in [moves, overdrawn] {
            let key = (account.to_owned(), USD);
            assert_eq!(parent[&key][..2], [0, 0], "{account} left the parent");
            assert_eq!(
                child[&key][..2],
                original[&key][..2],
                "{account} arrived whole"
            );
        }
        assert_eq!(
            child[&(moves.to_owned(), USD)][1],
            30,
            "with its reservation"
        );
        assert!(
            child[&(overdrawn.to_owned(), USD)][0] < 0,
            "overdrawn, still"
        );
        assert!(!child.contains_key(&(stays.to_owned(), USD)));
        assert!(
            !child.contains_key(&(bank.to_owned(), USD)),
            "the shard stays"
        );
        let arrived: Vec<&str> = derived
            .child_events
            .iter()
            .filter(|e| e.name() == "account_moved_in")
            .filter_map(|e| e.account().map(String::as_str))
            .collect();
        assert_eq!(arrived.len(), 2);
        assert!(arrived.contains(&moves) && arrived.contains(&overdrawn));

        // Records: the parent keeps none of a moved account's; the child
        // holds every record of its accounts, and the copied ones.
        let after: Vec<&Record> = before
            .iter()
            .filter(|(key, _)| !derived.parent_deletes.contains(key))
            .collect();
        let whose = |rt: &mut Runtime, records: Vec<&Record>| {
            let mut owners = Vec::new();
            for_each_owner(
                rt,
                records.into_iter().map(|(k, v)| Ok((k, v))),
                |_, _, b| {
                    owners.push(match b {
                        Belongs::ToNone => None,
                        Belongs::To(a) => Some(a.to_owned()),
                        Belongs::Account { open, .. } => Some(open.account.to_owned()),
                    });
                    Ok(())
                },
            )
            .expect("no host failure")
            .expect("answers");
            owners
        };
        let kept = whose(&mut rt, after.clone());
        let kept_by = |a: &String| a == stays || a == bank || a == treasury;
        assert!(kept.iter().flatten().all(kept_by), "{kept:?}");
        assert!(kept.iter().flatten().any(|a| a == treasury));
        let moved = whose(&mut rt, derived.child_records.iter().collect());
        assert!(
            moved.iter().flatten().all(|a| a == moves || a == overdrawn),
            "{moved:?}"
        );
        // One of no account's (the early cancel's phase record) in both.
        assert_eq!(moved.iter().filter(|a| a.is_none()).count(), 1);
        assert_eq!(kept.iter().filter(|a| a.is_none()).count(), 1);
        // Every record is on one side at least; only the copies on both.
        let both = before
            .iter()
            .filter(|r| after.contains(r) && derived.child_records.contains(r))
            .count();
        assert_eq!(both, 1);
        assert_eq!(
            after.len() + derived.child_records.len(),
            before.len() + both
        );

        // A state split again moves nothing more.
        events.clear();
        let again = derive(
            &mut rt,
            after.iter().map(|(k, v)| Ok((k, v))),
            Vec::new(),
            MOVING,
            Txid(100),
        )
        .expect("no host failure")
        .expect("splits");
        assert!(again.parent_deletes.is_empty() && again.parent_events.is_empty());
    }
}

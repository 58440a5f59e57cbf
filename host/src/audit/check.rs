//! `wallet audit`: a stopped replica (or a copy of its data directory)
//! checked from its raw history. The command archive is replayed from
//! genesis, each batch through the version the log scheduled for it, and
//! every record the replay makes must equal the stored one byte for byte
//! (so the hash chain, every event and every version stamp are checked);
//! the stored components must hash to their names; every currency's
//! balances must sum to zero; and the read models must hold the balances
//! the events give.

use super::{Birth, History, Migration};
use crate::node::Holdings;
use crate::raft::for_each_archived;
use crate::sm::{Executed, Executor, MemoryState, VersionHash};
use crate::store::{
    DB_DIR, EVENTS_DIR, Record, RecordHeader, chain_next, encode_record, genesis_version_read_only,
    read_meta_read_only, stored_versions_read_only,
};
use crate::views::{StoredBalances, stored_balances_read_only};
use crate::{Error, Result};
use hashbrown::HashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use wallet_core::{Currency, codec};

/// Per `(account, currency)`: available, reserved and in flight, in minor
/// units (`i128`, so that the fold never overflows).
type Balances = BTreeMap<(String, String), [i128; 3]>;

/// [`Balances`] while the replay adds every event to them: keyed by the
/// currency code then the account's bytes, so that an event finds its
/// total without allocating (a replay adds tens of millions).
#[derive(Default)]
struct Totals {
    totals: HashMap<Box<[u8]>, [i128; 3]>,
    key: Vec<u8>,
}

impl Totals {
    fn add(&mut self, account: &str, currency: Currency, change: [i128; 3]) {
        self.key.clear();
        self.key.extend_from_slice(&currency.0);
        self.key.extend_from_slice(account.as_bytes());
        let total = self.totals.entry_ref(&self.key[..]).or_insert([0; 3]);
        for (total, delta) in total.iter_mut().zip(change) {
            *total += delta;
        }
    }

    fn balances(&self) -> Balances {
        self.totals
            .iter()
            .map(|(key, total)| {
                let (currency, account) = split(key);
                let account = String::from_utf8_lossy(account).into_owned();
                ((account, currency.to_string()), *total)
            })
            .collect()
    }

    /// Per currency, every balance, reservation and amount in flight.
    fn sums(&self) -> BTreeMap<String, i128> {
        let mut sums = BTreeMap::new();
        for (key, total) in &self.totals {
            *sums.entry(split(key).0.to_string()).or_default() += total.iter().sum::<i128>();
        }
        sums
    }
}

fn split(key: &[u8]) -> (Currency, &[u8]) {
    let (currency, account) = key.split_at(3);
    let currency = Currency(
        currency
            .try_into()
            .expect("a key starts with a currency code"),
    );
    (currency, account)
}

/// What an audit found, once every check passed.
#[derive(Clone, Debug, Serialize)]
pub struct Audit {
    /// The log index the archive was replayed through.
    pub through: u64,
    pub batches: u64,
    /// Commands (transfers, openings, ...) in those batches.
    pub commands: u64,
    pub events: u64,
    pub chain_head: String,
    /// Batches each version ran.
    pub versions: BTreeMap<VersionHash, u64>,
    /// The migrations the replay ran, in log order.
    pub migrations: Vec<Migration>,
    /// Per currency: the sum of every balance, reservation and amount in
    /// flight (zero, or the audit fails).
    pub sums: BTreeMap<String, i128>,
    /// Accounts whose read-model balances were compared.
    pub accounts_compared: usize,
    /// Balances as of the `at` time asked for, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances_at: Option<Vec<BalanceAt>>,
    /// The partitions split off this one, as their first states: each is
    /// audited from its own.
    #[serde(skip)]
    pub births: Vec<Birth>,
}

/// Where a partition's history starts.
pub enum Origin {
    /// Its log's first entry, on an empty state: a partition the cluster
    /// was made with.
    Genesis(Holdings),
    /// A split of another partition, as that one's audit replayed it.
    Split(Birth),
}

#[derive(Clone, Debug, Serialize)]
pub struct BalanceAt {
    pub account: String,
    pub currency: String,
    pub available: i128,
    pub reserved: i128,
}

/// The first thing an audit found wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    #[error("stored version {name} holds bytes hashing to {actual}")]
    Version { name: String, actual: String },
    #[error("event record {seq} (log index {index}) is not what the replay makes: {what}")]
    Record { seq: u64, index: u64, what: String },
    #[error("the event log holds {stored} records, the replay made {replayed}")]
    RecordCount { stored: u64, replayed: u64 },
    #[error("the store's committed chain head {stored} is not the replay's {replayed}")]
    Head { stored: String, replayed: String },
    #[error("currency {currency} sums to {sum}, not zero")]
    Sum { currency: String, sum: i128 },
    #[error(
        "the read models give {account} {currency} available {stored_available}, reserved {stored_reserved}; the events give {available}, {reserved}"
    )]
    Projection {
        account: String,
        currency: String,
        stored_available: i64,
        stored_reserved: i64,
        available: i128,
        reserved: i128,
    },
    /// The data could not be read (a damaged frame names its file and
    /// offset).
    #[error(transparent)]
    Unreadable(#[from] Error),
}

/// Audits the partition in `partition_dir`, from its `origin`; with
/// `at_ms`, also gives every balance as of that time.
pub fn audit(
    partition_dir: &Path,
    origin: Origin,
    engine: &wasmtime::Engine,
    at_ms: Option<u64>,
) -> Result<Audit, Mismatch> {
    let state_dir = partition_dir.join("state");
    for (name, bytes) in stored_versions_read_only(&state_dir)? {
        let actual = VersionHash::of(&bytes);
        if actual.0[..] != name[..] {
            return Err(Mismatch::Version {
                name: hex::encode(name),
                actual: actual.to_string(),
            });
        }
    }
    let stored = crate::log::SegmentLog::open(
        &state_dir.join(EVENTS_DIR),
        crate::log::LogOptions::default(),
    )?;
    let projected = stored_balances_read_only(partition_dir)?;
    // The event log may hold records the durable state has not flushed yet
    // (they are made again on restart), never fewer.
    let committed = read_meta_read_only(&state_dir.join(DB_DIR))?.unwrap_or_default();
    let stored_last = stored.last_index().unwrap_or(0);
    if committed.events_last > stored_last {
        return Err(Error::EventLogBehind {
            committed: committed.events_last,
            log_last: stored.last_index(),
        }
        .into());
    }
    let mut replay = Replaying {
        stored_last,
        committed: (committed.events_last, committed.chain_head),
        committed_head: None,
        ended: false,
        history: match &origin {
            Origin::Genesis(holdings) => {
                History::new(*holdings, genesis_version_read_only(&state_dir)?)
            }
            Origin::Split(birth) => birth.history(),
        },
        executor: Executor::new(engine),
        state: MemoryState::default(),
        record: Vec::new(),
        balances: Totals::default(),
        balances_at: at_ms.map(|_| Totals::default()),
        projected_balances: None,
        audit: Audit {
            through: 0,
            batches: 0,
            commands: 0,
            events: 0,
            chain_head: hex::encode([0; 32]),
            versions: BTreeMap::new(),
            migrations: Vec::new(),
            sums: BTreeMap::new(),
            accounts_compared: 0,
            balances_at: None,
            births: Vec::new(),
        },
        head: [0; 32],
    };
    if let Origin::Split(birth) = origin {
        replay.born(&birth, &stored, at_ms, projected.as_ref())?;
    }
    let mut mismatch = None;
    for_each_archived(&partition_dir.join("raft"), |index, entry| {
        if mismatch.is_some() {
            return Ok(());
        }
        match replay.entry(index, entry, &stored, at_ms, projected.as_ref()) {
            Ok(()) => Ok(()),
            Err(Mismatch::Unreadable(error)) => Err(error),
            Err(found) => {
                mismatch = Some(found);
                Ok(())
            }
        }
    })?;
    if let Some(found) = mismatch {
        return Err(found);
    }
    replay.finish(&stored, projected)
}

struct Replaying {
    /// The stored event log's last record: batches after it were never
    /// applied here (or not synced before the node stopped).
    stored_last: u64,
    /// The durable state's last record and chain head.
    committed: (u64, [u8; 32]),
    /// The replay's head at that record.
    committed_head: Option<[u8; 32]>,
    /// Set at the first batch past the stored event log's end.
    ended: bool,
    history: History,
    executor: Executor,
    state: MemoryState,
    record: Vec<u8>,
    balances: Totals,
    balances_at: Option<Totals>,
    /// The balances when the read models' cursor was reached.
    projected_balances: Option<Balances>,
    audit: Audit,
    head: [u8; 32],
}

impl Replaying {
    fn entry(
        &mut self,
        index: u64,
        entry: &[u8],
        stored: &crate::log::SegmentLog,
        at_ms: Option<u64>,
        projected: Option<&StoredBalances>,
    ) -> Result<(), Mismatch> {
        if self.ended {
            return Ok(());
        }
        let Some(batch) = self.history.next(index, entry)? else {
            self.audit.through = index;
            return Ok(());
        };
        if self.audit.batches == self.stored_last {
            self.ended = true;
            return Ok(());
        }
        self.audit.through = index;
        let migrations = self
            .history
            .migrate(&mut self.executor, &batch, &mut self.state)?;
        self.audit.migrations.extend(migrations);
        let mut header = RecordHeader {
            log_index: index,
            timestamp_ms: batch.header.timestamp_ms,
            partition: batch.header.partition,
            version: batch.version,
            failure: None,
        };
        if batch.split.is_some() {
            // A refused split made no record.
            let Some((events, birth)) =
                self.history
                    .split(&mut self.executor, &batch, &mut self.state)?
            else {
                return Ok(());
            };
            self.audit.births.push(birth);
            let (events, offsets) = crate::partition::split::encode_events(&events);
            encode_record(&self.head, &header, &events, &offsets, &mut self.record);
        } else {
            let executed = self
                .history
                .runtime(&mut self.executor, batch.version)?
                .execute(batch.header, &batch.calls, &mut self.state)?;
            let (events, offsets) = match &executed {
                Executed::Applied(answer) => {
                    self.audit.commands += answer.outcomes().len() as u64;
                    self.state.apply(answer.writes());
                    (answer.events(), answer.event_offsets())
                }
                Executed::Failed(failure) => {
                    self.audit.commands += codec::check_calls(&batch.calls).map_or(0, |n| n as u64);
                    header.failure = Some(failure.clone());
                    (&[][..], &[][..])
                }
            };
            encode_record(&self.head, &header, events, offsets, &mut self.record);
        }
        self.check_record(&header, stored, at_ms, projected)
    }

    /// A child's first state and record (at its log position 0), as its
    /// parent's split made them.
    fn born(
        &mut self,
        birth: &Birth,
        stored: &crate::log::SegmentLog,
        at_ms: Option<u64>,
        projected: Option<&StoredBalances>,
    ) -> Result<(), Mismatch> {
        let records = birth.records.iter();
        self.state
            .apply(records.map(|(key, value)| (&key[..], Some(&value[..]))));
        let header = RecordHeader {
            log_index: 0,
            timestamp_ms: birth.timestamp_ms,
            partition: birth.child,
            version: birth.version,
            failure: None,
        };
        let (events, offsets) = crate::partition::split::encode_events(&birth.events);
        encode_record(&self.head, &header, &events, &offsets, &mut self.record);
        self.check_record(&header, stored, at_ms, projected)
    }

    /// Checks the record the replay made (`self.record`) against the
    /// stored one, and takes its events into the balances.
    fn check_record(
        &mut self,
        header: &RecordHeader,
        stored: &crate::log::SegmentLog,
        at_ms: Option<u64>,
        projected: Option<&StoredBalances>,
    ) -> Result<(), Mismatch> {
        let index = header.log_index;
        let seq = self.audit.batches + 1;
        let found = stored.read(seq)?;
        if found != Some(&self.record[..]) {
            return Err(Mismatch::Record {
                seq,
                index,
                what: describe(found, &self.record),
            });
        }
        self.head = chain_next(&self.record);
        if seq == self.committed.0 {
            self.committed_head = Some(self.head);
        }
        self.audit.batches = seq;
        *self.audit.versions.entry(header.version).or_default() += 1;
        let in_time = at_ms.is_some_and(|at| header.timestamp_ms <= at);
        for item in Record::parse(&self.record)?.events() {
            let (_, event) = item?;
            self.audit.events += 1;
            let Some((posting, effect)) = event.effect() else {
                continue;
            };
            let amount = i128::from(posting.amount);
            let change = [effect.available, effect.reserved, effect.in_flight]
                .map(|e| amount * i128::from(e));
            self.balances.add(posting.account, posting.currency, change);
            if in_time && let Some(at) = &mut self.balances_at {
                at.add(posting.account, posting.currency, change);
            }
        }
        if projected.is_some_and(|p| p.events == seq) {
            self.projected_balances = Some(self.balances.balances());
        }
        Ok(())
    }

    fn finish(
        mut self,
        stored: &crate::log::SegmentLog,
        projected: Option<StoredBalances>,
    ) -> Result<Audit, Mismatch> {
        let stored_last = stored.last_index().unwrap_or(0);
        if stored_last != self.audit.batches {
            return Err(Mismatch::RecordCount {
                stored: stored_last,
                replayed: self.audit.batches,
            });
        }
        let (committed_last, committed_head) = self.committed;
        let replayed = self.committed_head.unwrap_or([0; 32]);
        if committed_last > 0 && committed_head != replayed {
            return Err(Mismatch::Head {
                stored: hex::encode(committed_head),
                replayed: hex::encode(replayed),
            });
        }
        self.audit.sums = self.balances.sums();
        if let Some((currency, sum)) = self.audit.sums.iter().find(|(_, sum)| **sum != 0) {
            return Err(Mismatch::Sum {
                currency: currency.clone(),
                sum: *sum,
            });
        }
        if let Some(projected) = projected {
            let expected = match projected.events {
                0 => Balances::new(),
                _ => self.projected_balances.take().unwrap_or_default(),
            };
            self.audit.accounts_compared = compare(&projected, &expected)?;
        }
        self.audit.chain_head = hex::encode(self.head);
        self.audit.balances_at = self.balances_at.map(|balances| {
            balances
                .balances()
                .into_iter()
                .map(
                    |((account, currency), [available, reserved, _])| BalanceAt {
                        account,
                        currency,
                        available,
                        reserved,
                    },
                )
                .collect()
        });
        Ok(self.audit)
    }
}

/// Compares the read models with the balances the events give at the
/// record they reflect; returns how many accounts it compared.
fn compare(projected: &StoredBalances, expected: &Balances) -> Result<usize, Mismatch> {
    let mismatch = |account: &str, currency: &str, stored: (i64, i64), given: [i128; 3]| {
        Mismatch::Projection {
            account: account.into(),
            currency: currency.into(),
            stored_available: stored.0,
            stored_reserved: stored.1,
            available: given[0],
            reserved: given[1],
        }
    };
    for (account, balances) in &projected.accounts {
        for (currency, available, reserved) in balances {
            let key = (account.clone(), currency.clone());
            let given = expected.get(&key).copied().unwrap_or_default();
            if given[0] != i128::from(*available) || given[1] != i128::from(*reserved) {
                return Err(mismatch(account, currency, (*available, *reserved), given));
            }
        }
    }
    // And no balance the events give is missing from the read models.
    for ((account, currency), given) in expected {
        let held = projected
            .accounts
            .get(account)
            .is_some_and(|b| b.iter().any(|(c, _, _)| c == currency));
        if !held && (given[0] != 0 || given[1] != 0) {
            return Err(mismatch(account, currency, (0, 0), *given));
        }
    }
    Ok(projected.accounts.len())
}

/// What differs between a stored record and the replay's.
fn describe(stored: Option<&[u8]>, replayed: &[u8]) -> String {
    let Some(stored) = stored else {
        return "the event log ends before it".into();
    };
    let (Ok(ours), Ok(theirs)) = (Record::parse(replayed), Record::parse(stored)) else {
        return "the stored record does not decode".into();
    };
    if theirs.previous != ours.previous {
        return format!(
            "it links to {}, the chain to {}",
            hex::encode(theirs.previous),
            hex::encode(ours.previous)
        );
    }
    if theirs.header != ours.header {
        return format!(
            "its header is {:?}, the replay's {:?}",
            theirs.header, ours.header
        );
    }
    let show = |record: &Record| -> Vec<String> {
        record
            .events()
            .map(|e| e.map_or_else(|e| e.to_string(), |(c, e)| format!("call {c}: {e:?}")))
            .collect()
    };
    let (stored_events, replayed_events) = (show(&theirs), show(&ours));
    let i = stored_events
        .iter()
        .zip(&replayed_events)
        .take_while(|(a, b)| a == b)
        .count();
    let nth = |events: &[String]| events.get(i).cloned().unwrap_or_else(|| "none".into());
    format!(
        "event {i} is {}, the replay's {}",
        nth(&stored_events),
        nth(&replayed_events)
    )
}

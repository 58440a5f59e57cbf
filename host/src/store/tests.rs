use super::events::EventLog;
use super::*;
use crate::service::{BalanceView, EventView, TransferState};
use crate::sm::{AccountKind, Event, OpenAccount, Posting, Reason, Rejection};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

fn header(log_index: u64) -> BatchHeader {
    BatchHeader {
        log_index,
        timestamp_ms: 1_700_000_000_000 + log_index,
        partition: 0,
    }
}

fn batch(log_index: u64, events: Vec<Event>) -> AppliedBatch {
    AppliedBatch {
        log_index,
        header: header(log_index),
        writes: Vec::new(),
        events: events
            .into_iter()
            .enumerate()
            .map(|(i, event)| EventRecord {
                command: i as u32,
                event,
            })
            .collect(),
    }
}

fn open(account: &str, kind: AccountKind) -> Event {
    Event::AccountOpened(OpenAccount {
        account: account.into(),
        owner: Some(format!("owner-of-{account}")),
        kind,
    })
}

fn posting(id: u128, account: &str, currency: &str, amount: i64) -> Posting {
    Posting {
        id: Txid::from_u128(id),
        account: account.into(),
        currency: currency.into(),
        amount,
    }
}

/// A local transfer's two events.
fn transfer(id: u128, from: &str, to: &str, currency: &str, amount: i64) -> [Event; 2] {
    [
        Event::Debited(posting(id, from, currency, amount)),
        Event::Credited(posting(id, to, currency, amount)),
    ]
}

fn setup() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    (dir, store)
}

/// Opens `bank`, `alice`, `bob`, funds alice, moves some to bob: two commits.
fn seed(store: &Store) -> Vec<AppliedBatch> {
    let first = vec![
        batch(
            1,
            vec![
                open("bank", AccountKind::System),
                open("alice", AccountKind::Standard),
                open("bob", AccountKind::Credit(500)),
            ],
        ),
        batch(2, transfer(1, "bank", "alice", "USD", 10_000).into()),
    ];
    let mut third = transfer(2, "alice", "bob", "USD", 2_500).to_vec();
    third.extend(transfer(3, "bank", "bob", "EUR", 700));
    third.push(Event::FundsReserved(posting(4, "alice", "USD", 1_000)));
    let second = vec![batch(3, third), batch(4, Vec::new())];
    let update = |i: u8| MetaUpdate {
        applied: Some(vec![i]),
        membership: Some(vec![i, i]),
    };
    store.commit(&first, update(1)).expect("commit 1");
    store.commit(&second, update(2)).expect("commit 2");
    first.into_iter().chain(second).collect()
}

fn balance(currency: &str, available: i64, reserved: i64) -> BalanceView {
    BalanceView {
        currency: currency.into(),
        available,
        reserved,
    }
}

#[test]
fn commit_then_reopen_keeps_meta_chain_and_projections() {
    let (dir, store) = seed_store();
    let meta = store.meta().expect("meta");
    assert_eq!(meta.applied, Some(vec![2]));
    assert_eq!(meta.membership, Some(vec![2, 2]));
    assert_eq!(meta.events_last, Some(4));
    assert_eq!(meta.applied_index, Some(4));
    assert_ne!(meta.chain_head, [0; 32]);
    let alice = store.account("alice").expect("read").expect("alice");
    assert_eq!(alice.owner.as_deref(), Some("owner-of-alice"));
    assert_eq!(alice.kind, AccountKind::Standard);
    assert_eq!(alice.balances, vec![balance("USD", 6_500, 1_000)]);
    let bob = store.account("bob").expect("read").expect("bob");
    assert_eq!(bob.kind, AccountKind::Credit(500));
    assert_eq!(
        bob.balances,
        vec![balance("EUR", 700, 0), balance("USD", 2_500, 0)]
    );
    let history = store.history("alice", None, 100).expect("history");
    let transfer = store.transfer(Txid::from_u128(2)).expect("transfer");
    drop(store);

    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.meta().expect("meta"), meta);
    assert_eq!(store.account("alice").expect("read"), Some(alice));
    assert_eq!(store.account("bob").expect("read"), Some(bob));
    assert_eq!(store.history("alice", None, 100).expect("history"), history);
    assert_eq!(store.transfer(Txid::from_u128(2)).expect("read"), transfer);
    assert_eq!(store.account("nobody").expect("read"), None);
    assert_eq!(store.account("alice\0USD").expect("read"), None);
}

fn seed_store() -> (TempDir, Store) {
    let (dir, store) = setup();
    seed(&store);
    (dir, store)
}

#[test]
fn guest_writes_are_readable_through_guest_state() {
    let (_dir, store) = setup();
    let state = store.guest_state();
    let mut first = batch(1, Vec::new());
    first.writes = vec![
        (b"k1".to_vec(), Some(b"v1".to_vec())),
        (b"k2".to_vec(), Some(b"v2".to_vec())),
        (b"k1".to_vec(), Some(b"v1b".to_vec())),
    ];
    store
        .commit(&[first], MetaUpdate::default())
        .expect("commit");
    let keys = [b"k1".to_vec(), b"k2".to_vec(), b"k3".to_vec()];
    assert_eq!(
        state.get_many(&keys).expect("read"),
        vec![Some(b"v1b".to_vec()), Some(b"v2".to_vec()), None]
    );
    let mut second = batch(2, Vec::new());
    second.writes = vec![(b"k1".to_vec(), None)];
    store
        .commit(&[second], MetaUpdate::default())
        .expect("commit");
    assert_eq!(
        state.get_many(&keys).expect("read"),
        vec![None, Some(b"v2".to_vec()), None]
    );
    assert_eq!(
        state.get_many(&[]).expect("read"),
        Vec::<Option<Vec<u8>>>::new()
    );
}

#[test]
fn history_pages_through_more_events_than_the_limit() {
    let (_dir, store) = setup();
    let mut expected = vec![
        open("bank", AccountKind::System),
        open("a", AccountKind::Standard),
    ];
    store
        .commit(&[batch(1, expected.clone())], MetaUpdate::default())
        .expect("commit");
    expected.remove(0);
    // Several events for `a` per commit and per batch.
    for round in 0..5u64 {
        let batches: Vec<_> = (0..2u64)
            .map(|b| {
                let log_index = 2 + round * 2 + b;
                let id = u128::from(log_index);
                batch(log_index, transfer(id, "bank", "a", "USD", 1).into())
            })
            .collect();
        for b in &batches {
            expected.push(b.events[1].event.clone());
        }
        store
            .commit(&batches, MetaUpdate::default())
            .expect("commit");
    }
    assert_eq!(expected.len(), 11);
    let mut seen: Vec<EventView> = Vec::new();
    let mut after = None;
    loop {
        let page = store.history("a", after, 4).expect("read").expect("known");
        assert!(page.events.len() <= 4);
        seen.extend(page.events.iter().cloned());
        match page.next {
            Some(next) => {
                assert_eq!(page.events.len(), 4);
                assert_eq!(page.events.last().map(|e| e.seq), Some(next));
                after = Some(next);
            }
            None => break,
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>());
    let events: Vec<Event> = seen.iter().map(|e| e.event.clone()).collect();
    assert_eq!(events, expected);
    assert_eq!(seen[1].log_index, 2);
    assert_eq!(seen[1].timestamp_ms, header(2).timestamp_ms);
    let last = store
        .history("a", Some(8), 100)
        .expect("read")
        .expect("known");
    assert_eq!(last.events.len(), 3);
    assert_eq!(last.next, None);
    let exact = store
        .history("a", Some(7), 4)
        .expect("read")
        .expect("known");
    assert_eq!((exact.events.len(), exact.next), (4, None));
    let past = store
        .history("a", Some(50), 4)
        .expect("read")
        .expect("known");
    assert_eq!((past.events.len(), past.next), (0, None));
    assert_eq!(store.history("unknown", None, 4).expect("read"), None);
    let bank = store
        .history("bank", None, 100)
        .expect("read")
        .expect("known");
    assert_eq!(bank.events.len(), 11);
}

fn state_of(store: &Store, id: u128) -> (TransferState, usize) {
    let view = store
        .transfer(Txid::from_u128(id))
        .expect("read")
        .expect("known");
    assert_eq!(view.id, Txid::from_u128(id));
    let seqs: Vec<u64> = view.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=view.events.len() as u64).collect::<Vec<_>>());
    (view.state, view.events.len())
}

#[test]
fn transfer_states_follow_their_events() {
    let (_dir, store) = seed_store();
    let commit = |log_index: u64, events: Vec<Event>| {
        store
            .commit(&[batch(log_index, events)], MetaUpdate::default())
            .expect("commit");
    };
    // Local success, committed by `seed`.
    assert_eq!(state_of(&store, 2), (TransferState::Success, 2));
    // A rejection.
    let rejected = Rejection {
        id: Txid::from_u128(10),
        reason: Reason::InsufficientFunds,
    };
    commit(5, vec![Event::TransferRejected(rejected)]);
    let failed = TransferState::Failed(Reason::InsufficientFunds);
    assert_eq!(state_of(&store, 10), (failed, 1));
    // TC/C at the source: reserved by `seed`, settled now; a late cancel is
    // refused and leaves it a success.
    assert_eq!(state_of(&store, 4), (TransferState::Pending, 1));
    commit(
        6,
        vec![Event::ReservationSettled(posting(4, "alice", "USD", 1_000))],
    );
    assert_eq!(state_of(&store, 4), (TransferState::Success, 2));
    let late_cancel = Rejection {
        id: Txid::from_u128(4),
        reason: Reason::TransferConfirmed,
    };
    commit(7, vec![Event::TransferRejected(late_cancel)]);
    assert_eq!(state_of(&store, 4), (TransferState::Success, 3));
    // TC/C cancelled: reserve then release, in one commit.
    commit(
        8,
        vec![
            Event::FundsReserved(posting(11, "alice", "USD", 100)),
            Event::ReservationReleased(posting(11, "alice", "USD", 100)),
        ],
    );
    let cancelled = TransferState::Failed(Reason::TransferCancelled);
    assert_eq!(state_of(&store, 11), (cancelled.clone(), 2));
    // A cancel before its try.
    commit(9, vec![Event::CancelRecorded(Txid::from_u128(12))]);
    assert_eq!(state_of(&store, 12), (cancelled.clone(), 1));
    // Destination placeholder, then the credit.
    commit(10, vec![Event::CreditPending(posting(13, "bob", "USD", 5))]);
    assert_eq!(state_of(&store, 13), (TransferState::Pending, 1));
    commit(11, vec![Event::Received(posting(13, "bob", "USD", 5))]);
    assert_eq!(state_of(&store, 13), (TransferState::Success, 2));
    // A saga debit refunded.
    commit(12, vec![Event::Sent(posting(14, "alice", "USD", 50))]);
    assert_eq!(state_of(&store, 14), (TransferState::Pending, 1));
    commit(13, vec![Event::Received(posting(14, "alice", "USD", 50))]);
    assert_eq!(state_of(&store, 14), (cancelled, 2));
    assert_eq!(store.transfer(Txid::from_u128(99)).expect("read"), None);
    let view = store
        .transfer(Txid::from_u128(4))
        .expect("read")
        .expect("known");
    assert_eq!(view.events[1].log_index, 6);
}

/// The chain recomputed from the records alone, without the store's code.
fn recompute_heads(batches: &[(u64, BatchEvents)]) -> Vec<[u8; 32]> {
    let mut head = [0u8; 32];
    let mut heads = Vec::new();
    for (_, batch) in batches {
        let record = postcard::to_allocvec(batch).expect("encode");
        let mut hasher = Sha256::new();
        hasher.update(head);
        hasher.update(&record);
        head = hasher.finalize().into();
        heads.push(head);
    }
    heads
}

#[test]
fn chain_head_moves_per_batch_and_matches_an_independent_recomputation() {
    let (dir, store) = setup();
    let batches = seed(&store);
    let mut commit_heads = Vec::new();
    for log_index in 5..8 {
        let events = transfer(u128::from(log_index), "bank", "bob", "USD", 1).into();
        let head = store
            .commit(&[batch(log_index, events)], MetaUpdate::default())
            .expect("commit");
        commit_heads.push(head);
    }
    let meta = store.meta().expect("meta");
    drop(store);

    let read = read_events(dir.path()).expect("read events");
    let seqs: Vec<u64> = read.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    for ((_, got), sent) in read.iter().zip(&batches) {
        assert_eq!(got.log_index, sent.log_index);
        assert_eq!(got.header, sent.header);
        assert_eq!(got.events, sent.events);
    }
    let heads = recompute_heads(&read);
    assert_eq!(&heads[4..], &commit_heads[..]);
    assert_eq!(heads.last(), Some(&meta.chain_head));
    let mut distinct = heads.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), heads.len(), "every batch moves the head");
    let mut reader = EventReader::open(dir.path()).expect("reader");
    assert_eq!(reader.by_ref().count(), 7);
    assert_eq!(reader.head(), meta.chain_head);
    assert_eq!(
        chain_next(&[0; 32], b"x"),
        <[u8; 32]>::from(Sha256::digest([[0; 32].as_slice(), b"x"].concat()))
    );
}

#[test]
fn records_appended_without_a_rocksdb_commit_are_cut_on_open() {
    let (dir, store) = seed_store();
    let meta = store.meta().expect("meta");
    let alice = store.account("alice").expect("read");
    drop(store);
    // A crash after the event log's sync and before RocksDB's write.
    {
        let mut log = EventLog::open(dir.path()).expect("event log");
        let lost = [
            batch(5, transfer(20, "bank", "alice", "USD", 1).into()),
            batch(6, Vec::new()),
        ];
        let mut head = meta.chain_head;
        for (seq, lost) in (5..).zip(&lost) {
            head = log.append(seq, &head, lost).expect("append");
        }
        log.sync().expect("sync");
        assert_eq!(log.last_index(), Some(6));
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.meta().expect("meta"), meta);
    assert_eq!(store.account("alice").expect("read"), alice);
    // The batches are applied again, and the chain continues from the cut.
    let again = batch(5, transfer(20, "bank", "alice", "USD", 1).into());
    store
        .commit(&[again], MetaUpdate::default())
        .expect("commit");
    let meta = store.meta().expect("meta");
    assert_eq!(meta.events_last, Some(5));
    drop(store);
    let read = read_events(dir.path()).expect("read events");
    assert_eq!(read.len(), 5);
    assert_eq!(recompute_heads(&read).last(), Some(&meta.chain_head));
}

#[test]
fn a_log_that_disagrees_with_the_committed_head_is_refused() {
    let (dir, store) = seed_store();
    drop(store);
    {
        let log_dir = dir.path().join(EVENTS_DIR);
        let mut log = crate::log::SegmentLog::open(&log_dir, Default::default()).expect("log");
        let previous = log.read(4).expect("read").expect("record 4")[..32].to_vec();
        log.truncate_from(4).expect("truncate");
        let mut forged = previous;
        let other = BatchEvents {
            log_index: 4,
            header: header(4),
            events: batch(4, vec![Event::CancelRecorded(Txid::from_u128(7))]).events,
        };
        forged.extend(postcard::to_allocvec(&other).expect("encode"));
        log.append(4, &forged).expect("append");
        log.sync().expect("sync");
    }
    let err = read_events(dir.path()).expect_err("refused");
    assert!(matches!(err, Error::ChainMismatch { seq: 4, .. }), "{err}");
    let err = Store::open(dir.path()).err().expect("refused");
    assert!(matches!(err, Error::ChainMismatch { seq: 4, .. }), "{err}");
}

#[test]
fn a_log_missing_committed_records_is_refused() {
    let (dir, store) = seed_store();
    drop(store);
    {
        let log_dir = dir.path().join(EVENTS_DIR);
        let mut log = crate::log::SegmentLog::open(&log_dir, Default::default()).expect("log");
        log.truncate_from(3).expect("truncate");
    }
    let err = Store::open(dir.path()).err().expect("refused");
    assert!(
        matches!(err, Error::EventLogBehind { committed: 4, .. }),
        "{err}"
    );
}

#[test]
fn a_missing_column_family_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_dir = dir.path().join(DB_DIR);
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let names = ["guest", "balances", "history", "versions", "meta"];
        rocksdb::DB::open_cf(&options, &db_dir, names).expect("create");
    }
    let err = Store::open(dir.path()).err().expect("refused");
    assert!(
        matches!(
            err,
            Error::MissingColumnFamily {
                name: "transfers",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn recomputed_balances_equal_the_projection() {
    let (dir, store) = seed_store();
    let more = vec![
        batch(
            5,
            vec![Event::ReservationSettled(posting(4, "alice", "USD", 1_000))],
        ),
        batch(
            6,
            vec![
                Event::FundsReserved(posting(30, "bob", "EUR", 300)),
                Event::ReservationReleased(posting(30, "bob", "EUR", 100)),
                Event::Sent(posting(31, "bob", "USD", 2_000)),
                Event::Received(posting(32, "alice", "EUR", 40)),
                Event::CreditPending(posting(33, "alice", "JPY", 9)),
            ],
        ),
    ];
    store.commit(&more, MetaUpdate::default()).expect("commit");
    let accounts = ["bank", "alice", "bob"];
    let views: Vec<_> = accounts
        .iter()
        .map(|a| store.account(a).expect("read").expect("known"))
        .collect();
    drop(store);
    let read = read_events(dir.path()).expect("read events");
    let recomputed = recompute_balances(read.iter().map(|(_, b)| b));
    let mut projected = std::collections::BTreeMap::new();
    for view in views {
        for b in view.balances {
            let value = (i128::from(b.available), i128::from(b.reserved));
            projected.insert((view.account_id.clone(), b.currency), value);
        }
    }
    assert_eq!(projected, recomputed);
    let alice_usd = &recomputed[&("alice".to_string(), "USD".to_string())];
    assert_eq!(*alice_usd, (6_500, 0));
    assert_eq!(
        recomputed[&("bob".to_string(), "EUR".to_string())],
        (500, 200)
    );
}

#[test]
fn versions_and_the_active_version_persist() {
    let (dir, store) = setup();
    let bytes = b"\0asm component bytes".to_vec();
    let hash = VersionHash::of(&bytes);
    assert_eq!(store.version(hash).expect("read"), None);
    store.put_version(hash, &bytes).expect("put");
    let wrong = VersionHash::of(b"other");
    assert!(store.put_version(wrong, &bytes).is_err());
    store.set_active_version(hash).expect("activate");
    seed(&store);
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.version(hash).expect("read"), Some(bytes));
    assert_eq!(store.versions().expect("list"), vec![hash]);
    assert_eq!(store.meta().expect("meta").active_version, Some(hash));
}

#[test]
fn a_checkpoint_opens_as_a_store_that_continues_the_chain() {
    let (dir, store) = seed_store();
    let target = dir.path().join("snapshot");
    std::fs::create_dir_all(&target).expect("mkdir");
    let meta = store.checkpoint(&target.join(DB_DIR)).expect("checkpoint");
    assert_eq!(meta, store.meta().expect("meta"));
    store
        .commit(&[batch(5, Vec::new())], MetaUpdate::default())
        .expect("commit after the checkpoint");
    let copy = Store::open(&target).expect("open the checkpoint");
    assert_eq!(copy.meta().expect("meta"), meta);
    assert_eq!(
        copy.account("bob").expect("read"),
        store.account("bob").expect("read")
    );
    let head = copy
        .commit(&[batch(5, Vec::new())], MetaUpdate::default())
        .expect("commit");
    assert_eq!(head, store.meta().expect("meta").chain_head);
}

#[test]
fn an_event_view_is_seq_followed_by_its_tail() {
    let event = open("x", AccountKind::Credit(3));
    let tail = values::EventTail {
        log_index: 300,
        timestamp_ms: 1 << 40,
        event: &event,
    };
    let mut tail_bytes = Vec::new();
    values::encode_into("history", &tail, &mut tail_bytes).expect("encode");
    let mut value = Vec::new();
    values::event_view(&mut value, 1 << 20, &tail_bytes);
    let view = values::decode_event_view("history", &value).expect("decode");
    let expected = EventView {
        seq: 1 << 20,
        log_index: 300,
        timestamp_ms: 1 << 40,
        event,
    };
    assert_eq!(view, expected);
}

#[test]
fn the_store_is_shareable_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    fn state_source<T: StateSource + Clone>() {}
    shareable::<Store>();
    shareable::<GuestState>();
    state_source::<GuestState>();
}

//! A disk that fails under the Raft log stops the partition promptly, with
//! a clear fatal error, and loses nothing it acknowledged.

use super::*;
use crate::raft::Fail;
use crate::service::Reply;
use crate::test_support::{options, wasm_cache_dir};
use std::time::Duration;
use wallet_core::{Currency, Role, Transfer, Txid};

/// How long a stop may take before the test calls it a hang.
const PROMPTLY: Duration = Duration::from_secs(10);

fn engine() -> wasmtime::Engine {
    crate::sm::new_engine(Some(&wasm_cache_dir())).expect("engine")
}

/// The one partition of a node that runs one.
fn only_one() -> Holdings {
    Holdings::new(&crate::node::PartitionMap::new(1), 0)
}

/// Opens the partition in `dir`, waiting (boundedly) for the tasks of an
/// earlier one to let go of its files.
async fn open(dir: &Path) -> Arc<Partition> {
    open_as(dir, only_one()).await
}

async fn open_as(dir: &Path, holdings: Holdings) -> Arc<Partition> {
    let member = Member {
        node_id: 1,
        advertise: "127.0.0.1:0".into(),
    };
    let mut tries = 0;
    loop {
        match Partition::open(
            dir,
            holdings,
            &member,
            &Group::alone(),
            &engine(),
            &options(),
        )
        .await
        {
            Ok(partition) => return partition,
            Err(error) if tries < 100 => {
                tries += 1;
                tracing::debug!(%error, "the earlier partition still holds its files");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("opens: {error}"),
        }
    }
}

const ADMIN: Caller<&str> = Caller {
    role: Role::Admin,
    principal: "admin",
};

fn calls(commands: Vec<Command<&str>>) -> Calls {
    calls_as(ADMIN, commands)
}

fn calls_as(caller: Caller<&str>, commands: Vec<Command<&str>>) -> Calls {
    let mut calls = Calls::new();
    for command in commands {
        let caller = caller.clone();
        calls.push(&Call { caller, command }).expect("encodes");
    }
    calls
}

/// Opens a standard account without an owner.
fn standard(account: &str) -> Command<&str> {
    Command::OpenAccount(OpenAccount {
        account,
        owner: None,
        kind: AccountKind::Standard,
    })
}

fn deposit(id: u128) -> Command<&'static str> {
    deposit_to(id, "alice")
}

/// Once the read models reflect everything applied: `account`'s
/// available and reserved money in its first currency, `None` if the
/// models never saw it opened.
async fn balance(partition: &Partition, account: &str) -> Option<(i64, i64)> {
    let applied = partition.store().applied_index();
    partition
        .read_at(Some(applied), PROMPTLY)
        .await
        .expect("the read models catch up");
    let row = partition.views().account(account).expect("reads")?;
    let first = &row.balances[0];
    Some((first.available, first.reserved))
}

/// 100 USD from the bank.
fn deposit_to(id: u128, to: &str) -> Command<&str> {
    Command::Deposit(Transfer {
        id: Txid(id),
        from: account::BANK,
        to,
        amount: 100,
        currency: Currency(*b"USD"),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_log_append_stops_the_partition_and_loses_nothing_acknowledged() {
    a_failing_disk_stops_the_partition_and_loses_nothing_acknowledged(Fail::Appends).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_log_sync_stops_the_partition_and_loses_nothing_acknowledged() {
    a_failing_disk_stops_the_partition_and_loses_nothing_acknowledged(Fail::Syncs).await;
}

async fn a_failing_disk_stops_the_partition_and_loses_nothing_acknowledged(fail: Fail) {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open(dir.path()).await;
    let alice = standard("alice");
    let mut acknowledged = 0;
    for n in 0..5 {
        let commands = if n == 0 {
            vec![alice.clone(), deposit(n)]
        } else {
            vec![deposit(n)]
        };
        let submitted = partition
            .submit(calls(commands), None)
            .await
            .expect("acknowledged");
        assert!(submitted.replies.iter().all(|r| *r == Reply::Accepted));
        acknowledged += 100;
    }

    partition.log.fail(fail);
    let failed = tokio::time::timeout(PROMPTLY, partition.submit(calls(vec![deposit(99)]), None))
        .await
        .expect("the submission does not hang");
    match failed {
        Err(SubmitError::Stopped(why)) => assert!(why.contains("injected"), "{why}"),
        other => panic!("expected the partition to stop, got {other:?}"),
    }
    let mut metrics = partition.raft().metrics();
    let stopped = tokio::time::timeout(PROMPTLY, metrics.wait_for(|m| m.running_state.is_err()))
        .await
        .expect("raft stops promptly")
        .expect("metrics")
        .running_state
        .clone();
    let fatal = stopped.expect_err("a fatal error").to_string();
    assert!(
        fatal.contains("injected"),
        "the error says what failed: {fatal}"
    );
    partition.shutdown().await;
    drop(partition);

    let partition = open(dir.path()).await;
    let wanted = partition.store().applied_index();
    partition
        .read_at(Some(wanted), PROMPTLY)
        .await
        .expect("the read models catch up");
    let alice = partition
        .views()
        .account("alice")
        .expect("reads")
        .expect("alice exists");
    // The refused deposit may still be in the log (written, its sync
    // failed, the page cache kept it): an error answer means "unknown",
    // which is why commands carry idempotency keys.
    let available = alice.balances[0].available;
    assert!(
        (acknowledged..=acknowledged + 100).contains(&available),
        "every acknowledged deposit is there, and nothing else but the refused one: {available}"
    );
    partition.shutdown().await;
}

/// Partition 0 of two applies only the calls whose accounts it holds: the
/// others are answered `Moved` and change nothing, whether the command
/// names its account or a coordinator's step carries it as its home; and
/// a replay of its archive skips the same calls.
#[tokio::test(flavor = "multi_thread")]
async fn a_partition_applies_only_the_calls_whose_accounts_it_holds() {
    let map = crate::node::PartitionMap::new(2);
    let holdings = Holdings::new(&map, 0);
    let held_by = |p: u32| {
        (0..)
            .map(|i| format!("user-{i}"))
            .find(|id| map.of(id) == p)
            .expect("an account")
            .leak() as &'static str
    };
    let (mine, other) = (held_by(0), held_by(1));
    let usd = Currency(*b"USD");
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open_as(dir.path(), holdings).await;

    let submitted = partition
        .submit(
            calls(vec![
                standard(mine),
                standard(other),
                deposit_to(1, mine),
                deposit_to(2, other),
            ]),
            None,
        )
        .await
        .expect("applied");
    assert_eq!(
        submitted.replies,
        [Reply::Accepted, Reply::Moved, Reply::Accepted, Reply::Moved]
    );

    // A try at the source reserves 40 of `mine`; its settle, sent with
    // `other` as its home, is not applied; its release, homed right, is.
    let reserve = Command::TccReserve(Transfer {
        id: Txid(3),
        from: mine,
        to: other,
        amount: 40,
        currency: usd,
    });
    let step = |command, home: &str| {
        partition.submit(calls_as(Caller::SYSTEM, vec![command]), Some(home.into()))
    };
    let replies = |submitted: Result<Submitted, SubmitError>| submitted.expect("applied").replies;
    assert_eq!(replies(step(reserve, mine).await), [Reply::Accepted]);
    assert_eq!(
        replies(step(Command::TccSettle(Txid(3)), other).await),
        [Reply::Moved]
    );
    assert_eq!(
        replies(step(Command::TccRelease(Txid(3)), mine).await),
        [Reply::Accepted]
    );

    assert_eq!(balance(&partition, other).await, None);
    assert_eq!(balance(&partition, mine).await, Some((100, 0)));
    let head = partition.store().meta().chain_head;
    partition.shutdown().await;
    drop(partition);

    let replayed = |holdings| {
        crate::audit::replay(dir.path(), holdings, &engine())
            .expect("replays")
            .chain_head
    };
    assert_eq!(replayed(holdings), head);
    assert_ne!(
        replayed(only_one()),
        head,
        "a replay that ran every call would not reproduce the chain"
    );
}

/// The coordinator's journal opens a record when a try takes the money,
/// not when a retry of it is answered from its receipt: a retry neither
/// brings back a transfer that has ended nor restarts one's deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_try_opens_no_journal_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open(dir.path()).await;
    let alice = standard("alice");
    partition
        .submit(calls(vec![alice, deposit(1)]), None)
        .await
        .expect("applied");
    let reserve = || {
        Command::TccReserve(Transfer {
            id: Txid(2),
            from: "alice",
            to: "bob",
            amount: 40,
            currency: Currency(*b"USD"),
        })
    };
    let step = |command| {
        partition.submit(
            calls_as(Caller::SYSTEM, vec![command]),
            Some("alice".into()),
        )
    };
    let in_flight = || partition.store().in_flight().expect("reads the journal");

    assert_eq!(
        step(reserve()).await.expect("applied").replies,
        [Reply::Accepted]
    );
    let opened = in_flight();
    assert_eq!(opened.len(), 1);
    // Retried while in flight: the record, and its deadline, stay as they were.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        step(reserve()).await.expect("applied").replies,
        [Reply::Accepted]
    );
    assert_eq!(in_flight(), opened);

    let release = Command::TccRelease(Txid(2));
    assert_eq!(
        step(release).await.expect("applied").replies,
        [Reply::Accepted]
    );
    assert!(in_flight().is_empty());
    // Retried after it ended: answered as before, and nothing reopens.
    assert_eq!(
        step(reserve()).await.expect("applied").replies,
        [Reply::Accepted]
    );
    assert!(in_flight().is_empty(), "{:?}", in_flight());
    partition.shutdown().await;
}

/// A member whose group another member started first (here, a
/// candidate's vote reached it before it initialized) opens without error:
/// openraft refuses to initialize it, and there is nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn initializing_a_group_another_member_started_is_no_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = options();
    let store = Arc::new(Store::open(&dir.path().join("state"), &options.store).expect("store"));
    let log_options = LogOptions {
        segment_bytes: options.log_segment_bytes,
    };
    let log = LogStore::open(&dir.path().join("raft"), log_options, store.clone()).expect("log");
    let snapshots =
        Snapshots::open(store.clone(), dir.path().join("snapshots")).expect("snapshots");
    let executor = Executor::new(&engine());
    let births = super::split::Births {
        dir: dir.path().to_path_buf(),
        options: options.store.clone(),
    };
    let state_machine = StateMachine::new(
        store.clone(),
        executor,
        only_one(),
        snapshots,
        log.clone(),
        births,
    );
    let network = Network::new(None, 0, store.event_log(), log.clone());
    let config = raft_config(options.snapshot_every).expect("config");
    let raft = Raft::new(1, config, network, log, state_machine)
        .await
        .expect("raft");
    let vote = openraft::Vote::new(1, 2);
    let answer = raft
        .vote(openraft::raft::VoteRequest::new(vote, None))
        .await
        .expect("answered");
    assert!(answer.vote_granted, "a pristine member grants it");

    let member = Member {
        node_id: 1,
        advertise: "127.0.0.1:1".into(),
    };
    let members = BTreeMap::from([(1, "127.0.0.1:1".into()), (2, "127.0.0.1:2".into())]);
    initialize(&raft, &member, &members)
        .await
        .expect("the group is under way: nothing to do");
    raft.shutdown().await.expect("stops");
}

/// Splits off `child` as a client does: asked again when the wait for the
/// commit ran out, as it may on a loaded machine (a split's apply flushes
/// the parent's state and writes the child's, and RocksDB's flush threads
/// are shared by every database in the process); asked again, a split
/// answers what it did.
async fn split(partition: &Partition, child: u32, id: u128) -> (SplitOutcome, Position) {
    for _ in 0..10 {
        match partition.split(child, id).await {
            Err(SubmitError::NoQuorum(why)) => tracing::debug!(%why, "asking again"),
            answered => return answered.expect("applied"),
        }
    }
    panic!("the split did not commit");
}

/// A partition splits: the accounts of the upper half of its range leave
/// with their records, their money and their transfers in flight for the
/// child, whose first state is written beside the parent's; from the
/// split on, the parent applies no call of theirs, and its books still
/// sum to zero.
/// A split while the group has a learner (a replica being added or
/// removed) is refused, changing nothing, since the child's group would
/// start without it; a replay of the archive refuses it too.
#[tokio::test(flavor = "multi_thread")]
async fn a_split_is_refused_while_a_replica_is_being_added() {
    let upper = crate::node::Range::WHOLE.halves().expect("halves").1;
    let moves = (0..)
        .map(|i| format!("user-{i}"))
        .find(|id| upper.contains(crate::node::hash(id)))
        .expect("an account");
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open(&dir.path().join("partition-0")).await;
    let opened = calls(vec![standard(&moves), deposit_to(1, &moves)]);
    partition.submit(opened, None).await.expect("applied");
    let learner = openraft::BasicNode::new("127.0.0.1:9");
    partition
        .raft
        .add_learner(9, learner, false)
        .await
        .expect("a learner");
    let (moving, _) = split(&partition, 1, 78).await;
    assert_eq!(
        moving,
        SplitOutcome::Refused(SplitRefused::ReplicaMoving(9))
    );
    assert_eq!(partition.store().splits().expect("reads"), None);
    assert_eq!(balance(&partition, &moves).await.map(|b| b.0), Some(100));
    // The replay follows the membership entries: had it split, the money
    // that would have left would change the chain.
    let head = partition.store().meta().chain_head;
    partition.shutdown().await;
    drop(partition);
    let replayed = crate::audit::replay(&dir.path().join("partition-0"), only_one(), &engine())
        .expect("replays");
    assert_eq!(replayed.chain_head, head);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_hands_the_upper_half_to_a_child_and_keeps_the_rest() {
    let upper = crate::node::Range::WHOLE.halves().expect("halves").1;
    let held = |moves: bool| {
        (0..)
            .map(|i| format!("user-{i}"))
            .find(|id| upper.contains(crate::node::hash(id)) == moves)
            .expect("an account")
            .leak() as &'static str
    };
    let (stays, moves) = (held(false), held(true));
    let usd = Currency(*b"USD");
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open(&dir.path().join("partition-0")).await;
    let opened = calls(vec![
        standard(stays),
        standard(moves),
        deposit_to(1, stays),
        deposit_to(2, moves),
    ]);
    let submitted = partition.submit(opened, None).await.expect("applied");
    assert!(submitted.replies.iter().all(|r| *r == Reply::Accepted));
    let reserve = Command::TccReserve(Transfer {
        id: Txid(3),
        from: moves,
        to: "elsewhere",
        amount: 40,
        currency: usd,
    });
    let reserved = partition
        .submit(calls_as(Caller::SYSTEM, vec![reserve]), Some(moves.into()))
        .await
        .expect("applied");
    assert_eq!(reserved.replies, [Reply::Accepted]);

    // A split naming the partition itself is refused, and makes no record.
    let records = partition.store().meta().events_last;
    let (refused, _) = split(&partition, 0, 76).await;
    assert_eq!(refused, SplitOutcome::Refused(SplitRefused::ChildIsParent));
    assert_eq!(partition.store().meta().events_last, records);

    let (outcome, position) = split(&partition, 1, 77).await;
    let SplitOutcome::Split(child) = outcome else {
        panic!("refused: {outcome:?}");
    };
    assert_eq!((child.partition, child.range, child.id), (1, upper, 77));
    assert!(child.index <= position.index, "{child:?} {position:?}");
    let splits = partition.store().splits().expect("reads").expect("a split");
    assert_eq!(splits.children, [child]);
    // Asked again, the split answers what it did.
    let (again, _) = split(&partition, 1, 77).await;
    assert_eq!(again, SplitOutcome::Split(child));

    // The parent no longer applies the calls of the accounts that left.
    let after = calls(vec![deposit_to(4, stays), deposit_to(5, moves)]);
    let submitted = partition.submit(after, None).await.expect("applied");
    assert_eq!(submitted.replies, [Reply::Accepted, Reply::Moved]);
    assert_eq!(balance(&partition, stays).await, Some((200, 0)));
    assert_eq!(
        balance(&partition, moves).await,
        Some((0, 0)),
        "its money left"
    );
    let status = partition.status();
    assert_eq!(status.in_flight.get("USD"), Some(&100), "through in-flight");
    assert!(partition.store().in_flight().expect("reads").is_empty());

    // The child's first state: the account, its money, its transfer.
    let store = Store::open(&dir.path().join("partition-1/state"), &options().store)
        .expect("the child's store opens");
    let meta = store.meta();
    assert_eq!((meta.applied_index, meta.events_last), (0, 1));
    assert_eq!(store.splits().expect("reads").map(|s| s.range), Some(upper));
    let journal = store.in_flight().expect("reads");
    assert_eq!(journal.iter().map(|t| t.id).collect::<Vec<_>>(), [3]);
    let names = store
        .event_log()
        .with_record(1, |bytes| {
            let record = crate::store::Record::parse(bytes).expect("parses");
            let events = record.events().map(|e| e.expect("decodes").1.name());
            events.collect::<Vec<_>>()
        })
        .expect("reads")
        .expect("the first record");
    assert_eq!(
        names,
        ["account_moved_in", "moved_in", "reservation_moved_in"]
    );
    let records = store
        .with_guest_records(|records| records.count())
        .expect("reads");
    assert!(
        records >= 3,
        "the account, its receipts and its phase: {records}"
    );

    // The parent's archive replays to the same chain, split included, and
    // its audit finds every record and balance as stored.
    let head = partition.store().meta().chain_head;
    partition.shutdown().await;
    drop(partition);
    let parent = dir.path().join("partition-0");
    let replayed = crate::audit::replay(&parent, only_one(), &engine()).expect("replays");
    assert_eq!(replayed.chain_head, head);
    // Once the stopped partition's tasks let go of its event log.
    let mut tries = 0;
    let audit = loop {
        let origin = crate::audit::Origin::Genesis(only_one());
        match crate::audit::audit(&parent, origin, &engine(), None) {
            Err(crate::audit::Mismatch::Unreadable(Error::LogLocked { .. })) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            audited => break audited.expect("audits"),
        }
    };
    assert_eq!(audit.chain_head, hex::encode(head));
    assert!(audit.sums.values().all(|sum| *sum == 0), "{:?}", audit.sums);

    // The child opens from that state as a group of its own: it elects
    // itself, resumes the transfer in flight from its journal's record,
    // and takes the account's calls.
    drop(store);
    // The child's first state, from the parent's replayed split, gives
    // the child's first record as stored.
    let [birth] = <[_; 1]>::try_from(audit.births).expect("one split");
    let born = crate::audit::audit(
        &dir.path().join("partition-1"),
        crate::audit::Origin::Split(birth),
        &engine(),
        None,
    )
    .expect("the child audits");
    assert_eq!((born.batches, born.through), (1, 0));
    assert!(born.sums.values().all(|sum| *sum == 0), "{:?}", born.sums);
    let child = open_as(
        &dir.path().join("partition-1"),
        Holdings::from_range(1, upper),
    )
    .await;
    assert_eq!(child.store().in_flight().expect("reads").len(), 1);
    let later = calls(vec![deposit_to(6, moves), deposit_to(7, stays)]);
    let submitted = child.submit(later, None).await.expect("applied");
    assert_eq!(submitted.replies, [Reply::Accepted, Reply::Moved]);
    assert_eq!(balance(&child, moves).await, Some((160, 40)), "arrived");
    assert_eq!(child.status().in_flight.get("USD"), Some(&-100));
    child.shutdown().await;
}

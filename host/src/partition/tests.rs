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

/// Opens the partition in `dir`, waiting (boundedly) for the tasks of an
/// earlier one to let go of its files.
async fn open(dir: &Path) -> Arc<Partition> {
    let member = Member {
        node_id: 1,
        advertise: "127.0.0.1:0".into(),
    };
    let mut tries = 0;
    loop {
        match Partition::open(dir, 0, &member, &Group::alone(), &engine(), &options()).await {
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
    let mut calls = Calls::new();
    for command in commands {
        calls
            .push(&Call {
                caller: ADMIN,
                command,
            })
            .expect("encodes");
    }
    calls
}

fn deposit(id: u128) -> Command<&'static str> {
    Command::Deposit(Transfer {
        id: Txid(id),
        from: account::BANK,
        to: "alice",
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
    let alice = Command::OpenAccount(OpenAccount {
        account: "alice",
        owner: None,
        kind: AccountKind::Standard,
    });
    let mut acknowledged = 0;
    for n in 0..5 {
        let commands = if n == 0 {
            vec![alice.clone(), deposit(n)]
        } else {
            vec![deposit(n)]
        };
        let submitted = partition
            .submit(calls(commands))
            .await
            .expect("acknowledged");
        assert!(submitted.replies.iter().all(|r| *r == Reply::Accepted));
        acknowledged += 100;
    }

    partition.log.fail(fail);
    let failed = tokio::time::timeout(PROMPTLY, partition.submit(calls(vec![deposit(99)])))
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

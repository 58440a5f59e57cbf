//! `wallet backup` from a follower of a group under load, and `wallet
//! restore` into a new group of three and into a single node: each starts
//! where the backup stands, holds every transfer acknowledged before it,
//! takes new writes, and replays its command archive from genesis to its
//! head.

use super::{Cluster, FUNDS_CENTS, SECRET_A, accounts, balances, free_ports, open_and_fund};
use super::{Outcome, assert_moved, some_transfers, transfer_until};
use crate::harness::{ADMIN, Api, Server};
use crate::recovery::replayed_head;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Runs the `wallet` command; its exit status, stdout as JSON (if it is),
/// and stderr.
fn wallet(args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wallet"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("wallet runs");
    let stdout = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stdout, stderr)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Transfers through `api` until the group applied past `index`.
async fn load_until(api: &Api, index: u64) -> Vec<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let apis = Arc::new(vec![Api::at(&api.url)]);
    let client = tokio::spawn(transfer_until(apis, 7, stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
        if status["partitions"][0]["applied_index"].as_u64() > Some(index) {
            break;
        }
        assert!(Instant::now() < deadline, "too slow: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    client.await.expect("the client")
}

/// What a restored node must show: every transfer acknowledged before the
/// backup, conserved money.
async fn check_restored(api: &Api, before: &[Outcome]) {
    assert_moved(api, before, 5).await;
    let total: i64 = balances(api).await.values().sum();
    assert_eq!(total, FUNDS_CENTS * accounts().len() as i64, "conservation");
}

impl Cluster {
    /// A new group of three on ports of its own, each member made by
    /// `wallet restore` from `backup` before it starts.
    fn restored(backup: &Path) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("secret"), SECRET_A).expect("secret file");
        let mut cluster = Cluster {
            dir,
            ports: free_ports(3),
            nodes: vec![None, None, None],
            args: Vec::new(),
        };
        let peers = cluster.peers();
        for i in 0..3 {
            let data = cluster.data(i);
            let (ok, _, stderr) = wallet(&[
                "restore",
                "--from",
                path(backup),
                "--data-dir",
                path(&data),
                "--peers",
                &peers,
            ]);
            assert!(ok, "wallet restore: {stderr}");
        }
        for i in 0..3 {
            cluster.start_node(i);
        }
        cluster
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_under_load_restores_a_new_group_and_a_single_node() {
    let mut cluster = Cluster::start(&["--snapshot-entries", "100"]);
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    open_and_fund(&api).await;
    let before = load_until(&api, 300).await;

    // Online, from a follower, while transfers go on.
    let follower = cluster.api((leader + 1) % 3);
    let stop = Arc::new(AtomicBool::new(false));
    let apis = Arc::new(vec![Api::at(&api.url)]);
    let load = tokio::spawn(transfer_until(apis, 11, stop.clone()));
    let out = cluster.dir.path().join("backup");
    let (ok, summary, stderr) = {
        let (url, out) = (follower.url.clone(), out.clone());
        tokio::task::spawn_blocking(move || {
            wallet(&[
                "backup",
                "--target",
                &url,
                "--token",
                ADMIN,
                "--out",
                path(&out),
            ])
        })
        .await
        .expect("the backup command")
    };
    stop.store(true, Ordering::Relaxed);
    let during = load.await.expect("the load");
    assert!(ok, "wallet backup: {stderr}");
    assert!(!during.is_empty(), "the backup was taken under load");
    let head = summary["chain_head"].as_str().expect("a head").to_owned();
    assert!(summary["index"].as_u64() > Some(300), "{summary}");

    // A backup goes to a new directory only, and only an admin takes one.
    let url = follower.url.clone();
    let (ok, _, stderr) = wallet(&[
        "backup",
        "--target",
        &url,
        "--token",
        ADMIN,
        "--out",
        path(&out),
    ]);
    assert!(!ok && stderr.contains("new directory"), "{stderr}");
    let other = cluster.dir.path().join("other");
    let (ok, _, stderr) = wallet(&[
        "backup",
        "--target",
        &url,
        "--token",
        "nobody",
        "--out",
        path(&other),
    ]);
    assert!(!ok && stderr.contains("401"), "{stderr}");
    assert!(!other.exists());
    for i in 0..3 {
        cluster.nodes[i].take().expect("running").stop();
    }

    // A new group of three, on other ports, from the one backup.
    let restored = Cluster::restored(&out);
    let statuses = restored.quiesce().await;
    for status in &statuses {
        assert_eq!(status["chain_head"], head, "{status}");
    }
    let api = restored.api(restored.leader().await);
    check_restored(&api, &before).await;
    let at_backup = balances(&api).await;
    let (status, _) = api.get(Some(ADMIN), "/v1/admin/tokens").await;
    assert_eq!(status, StatusCode::OK, "the group's tokens came along");
    some_transfers(&api, 20).await;
    let head = restored.quiesce().await[0]["chain_head"]
        .as_str()
        .expect("a head")
        .to_owned();
    let mut restored = restored;
    for i in 0..3 {
        restored.nodes[i].take().expect("running").stop();
        assert_eq!(replayed_head(&restored.data(i)), head, "member {}", i + 1);
    }

    // A single node from the same backup. (It opens the system accounts
    // as it starts, a batch of refusals that moves the chain head on and
    // no money.)
    let data = cluster.dir.path().join("single");
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port}");
    let restore = [
        "restore",
        "--from",
        path(&out),
        "--data-dir",
        path(&data),
        "--listen",
        &listen,
    ];
    let (ok, _, stderr) = wallet(&restore);
    assert!(ok, "wallet restore: {stderr}");
    let (ok, _, stderr) = wallet(&restore);
    assert!(!ok && stderr.contains("new data directory"), "{stderr}");
    let mut single = Server::try_start_with(&data, &["--listen", &listen]).expect("it starts");
    let api = Api::new(&single);
    check_restored(&api, &before).await;
    assert_eq!(balances(&api).await, at_backup);
    some_transfers(&api, 5).await;
    let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
    let head = status["partitions"][0]["chain_head"].clone();
    single.stop();
    assert_eq!(json!(replayed_head(&data)), head);
}

//! End to end: real `wallet serve` processes, real HTTP, kill -9, restarts,
//! damaged logs, a full disk, TLS.

mod audit;
mod cluster;
mod contract;
mod disk;
mod harness;
mod recovery;
mod tls;

use harness::{ADMIN, Api, Server};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn id() -> String {
    Uuid::new_v4().to_string()
}

/// The README's five-minute tour, step by step.
#[tokio::test(flavor = "multi_thread")]
async fn readme_tour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"));
    let api = Api::new(&server);
    api.open("alice", "alice").await;
    api.open("bob", "bob").await;
    let openings =
        json!({"accounts": [{"account_id": "carol", "owner": "carol"}, {"account_id": "bob"}]});
    let (status, body) = api
        .post(Some(ADMIN), "/v1/wallet/account_openings", openings)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"results": [
                {"account_id": "carol", "status": "opened"},
                {"account_id": "bob", "status": "failed", "reason": "account_exists"},
            ]})
        )
    );
    api.deposit("alice", "100.00").await;

    let tx = "0b7e1f5a-2c1d-4d1e-9f00-000000000001";
    let (status, body) = api.transfer("alice", "bob", "25.50", tx).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"status": "success", "transaction_id": tx})
        )
    );

    let (status, body) = api.get(Some(ADMIN), "/v1/wallet/accounts/alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["balances"]["USD"],
        json!({"available": "74.50", "reserved": "0.00"})
    );
    let (_, body) = api
        .get(Some(ADMIN), "/v1/wallet/accounts/bob/balance?currency=USD")
        .await;
    assert_eq!(
        (body["available"].as_str(), body["currency"].as_str()),
        (Some("25.50"), Some("USD"))
    );

    let (status, body) = api
        .get(Some(ADMIN), "/v1/wallet/accounts/alice/history")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.to_string().contains(tx),
        "history names the transfer: {body}"
    );

    let (status, body) = api
        .get(Some(ADMIN), &format!("/v1/wallet/transfers/{tx}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "success", "{body}");

    let (status, body) = api.transfer("alice", "bob", "1000.00", &id()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["reason"], "insufficient_funds");

    let (status, body) = api.transfer("alice", "bob", "1.001", &id()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "amount_too_precise");
    assert_eq!(api.cents("alice").await, 7450, "refusals moved nothing");

    // A client token for alice pays from alice's wallet, not from bob's.
    let alice = api.token("client", Some("alice")).await;
    let pay = |from: &str, to: &str, tx: &str| {
        json!({"from_account": from, "to_account": to, "amount": "1.00",
               "currency": "USD", "transaction_id": tx})
    };
    let path = "/v1/wallet/balance_transfer";
    let (status, body) = api
        .post(Some(&alice), path, pay("alice", "bob", &id()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .post(Some(&alice), path, pay("bob", "alice", &id()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["reason"], "not_owner");
    assert_eq!(api.cents("alice").await, 7350);
}

/// A supervisor may stop the server the moment it prints its address:
/// SIGTERM then is a graceful stop (exit 0), never the default action.
#[test]
fn sigterm_right_after_the_address_stops_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    for _ in 0..40 {
        Server::start(&dir.path().join("data")).stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_moves_money_once_and_a_different_body_conflicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"));
    let api = Api::new(&server);
    api.open("alice", "alice").await;
    api.open("bob", "bob").await;
    api.deposit("alice", "10.00").await;
    let tx = id();
    let first = api.transfer("alice", "bob", "3.00", &tx).await;
    let second = api.transfer("alice", "bob", "3.00", &tx).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(first, second, "a retry returns the first answer");
    assert_eq!(
        (api.cents("alice").await, api.cents("bob").await),
        (700, 300)
    );
    let (status, body) = api.transfer("alice", "bob", "4.00", &tx).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (api.cents("alice").await, api.cents("bob").await),
        (700, 300)
    );
}

/// Every account's USD, the system account included.
async fn all_balances(api: &Api, accounts: &[String]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for account in accounts {
        out.insert(account.clone(), api.cents(account).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_clients_never_overdraw_a_hot_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"));
    let api = Arc::new(Api::new(&server));
    let mut accounts = vec!["external:bank".to_string(), "hot".to_string()];
    api.open("hot", "hot").await;
    api.deposit("hot", "100.00").await;
    for i in 0..8 {
        let name = format!("sink-{i}");
        api.open(&name, "sink").await;
        accounts.push(name);
    }
    let mut tasks = Vec::new();
    for client in 0..64 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..5 {
                let (status, body) = api
                    .transfer("hot", &format!("sink-{}", client % 8), "1.00", &id())
                    .await;
                match status {
                    StatusCode::OK => ok += 1,
                    StatusCode::UNPROCESSABLE_ENTITY => {
                        assert_eq!(body["reason"], "insufficient_funds")
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            ok
        }));
    }
    let mut succeeded = 0;
    for task in tasks {
        succeeded += task.await.expect("client task");
    }
    assert_eq!(
        succeeded, 100,
        "320 attempts of 1.00 out of 100.00: exactly 100 succeed"
    );
    let balances = all_balances(&api, &accounts).await;
    assert_eq!(balances["hot"], 0);
    assert_eq!(
        balances.values().sum::<i64>(),
        0,
        "conservation: {balances:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_loses_no_acknowledged_transfer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let api = Arc::new(Api::new(&server));
    let mut accounts = vec!["external:bank".to_string()];
    for i in 0..10 {
        let name = format!("acct-{i}");
        api.open(&name, "owner").await;
        api.deposit(&name, "1000.00").await;
        accounts.push(name);
    }
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tasks = Vec::new();
    for client in 0..16u64 {
        let (api, acked) = (api.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = client;
            while Instant::now() < deadline {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let (from, to) = ((n >> 33) % 10, ((n >> 33) % 10 + 1 + (n >> 40) % 9) % 10);
                let tx = id();
                let (from, to) = (format!("acct-{from}"), format!("acct-{to}"));
                let request = api.transfer(&from, &to, "0.01", &tx);
                match tokio::time::timeout(Duration::from_secs(5), request).await {
                    Ok((StatusCode::OK, _)) => acked.lock().expect("lock").push(tx),
                    _ => return, // the server died under us
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    for task in tasks {
        let _ = task.await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 50,
        "the load ran: {} acknowledged",
        acked.len()
    );

    let mut server = Server::start(&data);
    let api = Api::new(&server);
    for tx in &acked {
        let (status, body) = api
            .get(Some(ADMIN), &format!("/v1/wallet/transfers/{tx}"))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged {tx} is missing after restart"
        );
        assert_eq!(body["status"], "success");
        let debits = body.to_string().matches("debited").count();
        assert_eq!(debits, 1, "{tx} took effect exactly once: {body}");
    }
    let balances = all_balances(&api, &accounts).await;
    assert_eq!(
        balances.values().sum::<i64>(),
        0,
        "conservation after the crash"
    );
    server.stop();

    // The read model equals a recomputation from the event log alone.
    let events =
        wallet_host::store::read_events(&data.join("partition-0/state")).expect("event log reads");
    let recomputed = wallet_host::store::recompute_balances(&events);
    for (account, cents) in balances {
        let from_log = recomputed
            .get(&(account.clone(), "USD".to_string()))
            .map_or(0, |b| b.0);
        assert_eq!(from_log, i128::from(cents), "{account}");
    }
}

/// The newest segment of the Raft log and the end of its written records.
fn last_segment(data: &std::path::Path) -> (std::path::PathBuf, Vec<u8>, Vec<usize>) {
    let dir = data.join("partition-0/raft/entries");
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .expect("raft log dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    let path = segments.pop().expect("a segment");
    let bytes = std::fs::read(&path).expect("reads");
    // Frames: [len u32][crc u32][index u64][payload], 8-aligned, after a
    // 32-byte header; a zero length ends the data.
    let mut offsets = Vec::new();
    let mut at = 32;
    loop {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len == u32::MAX as usize {
            break;
        }
        offsets.push(at);
        at += (16 + len).div_ceil(8) * 8;
    }
    offsets.push(at);
    (path, bytes, offsets)
}

async fn seed(data: &std::path::Path) -> i64 {
    let mut server = Server::start(data);
    let api = Api::new(&server);
    api.open("alice", "alice").await;
    api.open("bob", "bob").await;
    api.deposit("alice", "50.00").await;
    for _ in 0..5 {
        assert_eq!(
            api.transfer("alice", "bob", "1.00", &id()).await.0,
            StatusCode::OK
        );
    }
    let alice = api.cents("alice").await;
    server.stop();
    alice
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_tail_is_cut_and_the_server_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let alice = seed(&data).await;
    // A write torn mid-record: a frame header promising more than arrived.
    let (path, mut bytes, offsets) = last_segment(&data);
    let end = *offsets.last().expect("end");
    bytes[end..end + 4].copy_from_slice(&200u32.to_le_bytes());
    bytes[end + 4..end + 16].copy_from_slice(&[0xAB; 12]);
    bytes[end + 16..end + 40].copy_from_slice(&[0xCD; 24]);
    std::fs::write(&path, &bytes).expect("scribbles");

    let server = Server::start(&data);
    let api = Api::new(&server);
    assert_eq!(api.cents("alice").await, alice);
    assert_eq!(
        api.transfer("alice", "bob", "1.00", &id()).await.0,
        StatusCode::OK
    );
    assert_eq!(api.cents("alice").await, alice - 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_record_in_the_middle_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    seed(&data).await;
    let (path, mut bytes, offsets) = last_segment(&data);
    assert!(offsets.len() > 3, "several records: {offsets:?}");
    let victim = offsets[1] + 16;
    bytes[victim] ^= 0xFF;
    std::fs::write(&path, &bytes).expect("scribbles");

    let failure = match Server::try_start(&data) {
        Ok(_) => panic!("started on a corrupt log"),
        Err(failure) => failure,
    };
    assert_ne!(failure.code, Some(0));
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        failure.stderr.contains(&name),
        "names the file: {}",
        failure.stderr
    );
    assert!(
        failure.stderr.contains(&offsets[1].to_string()),
        "names the offset: {}",
        failure.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_roles_are_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"));
    let api = Api::new(&server);
    api.open("alice", "alice").await;
    api.open("bob", "bob").await;
    api.deposit("bob", "10.00").await;
    let token = |role: &str, owner: Option<&str>| {
        let body = match owner {
            Some(owner) => json!({"role": role, "owner": owner}),
            None => json!({"role": role}),
        };
        let api = &api;
        async move {
            let (status, body) = api.post(Some(ADMIN), "/v1/admin/tokens", body).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["token"].as_str().expect("a token").to_string()
        }
    };
    let alice = token("client", Some("alice")).await;
    let auditor = token("auditor", None).await;
    let steal = || {
        json!({"from_account": "bob", "to_account": "alice", "amount": "1.00",
               "currency": "USD", "transaction_id": id()})
    };
    let path = "/v1/wallet/balance_transfer";
    assert_eq!(
        api.post(None, path, steal()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.post(Some("nope"), path, steal()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = api.post(Some(&alice), path, steal()).await;
    assert_eq!(
        (status, &body["reason"]),
        (StatusCode::FORBIDDEN, &json!("not_owner"))
    );
    let (status, body) = api.post(Some(&auditor), path, steal()).await;
    assert_eq!(
        (status, &body["reason"]),
        (StatusCode::FORBIDDEN, &json!("not_allowed"))
    );
    assert_eq!(
        api.get(Some(&auditor), "/v1/wallet/accounts/bob").await.0,
        StatusCode::OK
    );
    assert_eq!(api.cents("bob").await, 1000, "nothing moved");
}

/// `wallet bench` opens and funds its accounts in batches, can run its
/// setup again without funding anyone twice, and its load is refused
/// nothing (an account left unfunded would refuse transfers out of it).
#[tokio::test(flavor = "multi_thread")]
async fn bench_sets_up_every_account_once_and_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"));
    let api = Api::new(&server);
    let bench = |batch: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_wallet"))
            .args(["bench", "--target", &server.url, "--accounts", "9000"])
            .args([
                "--clients",
                "2",
                "--duration",
                "1",
                "--batch",
                batch,
                "--json",
            ])
            .env("WALLET_TOKEN", ADMIN)
            .output()
            .expect("wallet bench runs");
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("a JSON report")
    };
    for batch in ["0", "50"] {
        let report = bench(batch);
        assert!(report["transfers_ok"].as_u64() > Some(0), "{report}");
        assert_eq!(report["rejected"], 0, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
    }
    api.caught_up().await;
    let funded = 100_000_000;
    let mut total = 0;
    for i in 0..9000 {
        total += api.cents(&format!("bench-{i}")).await;
    }
    assert_eq!(total, 9000 * funded, "setup funded each account once");
}

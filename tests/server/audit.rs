//! `wallet audit` on a stopped node's data directory: a history run by two
//! versions replays and checks; balances as of a past time are the ones
//! the API gave then, and the ones `?at=` answers from the read models;
//! and one tampered byte of the event log, or a stored component changed,
//! fails the audit naming where.

use crate::harness::{ADMIN, Api, Server, open_store};
use crate::id;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use wallet_host::sm::VersionHash;

/// The release before this build's: the same rules, built differently.
const EARLIER_RELEASE: &[u8] =
    include_bytes!("../../guest-statemachine/releases/statemachine-2.0.0.wasm");

/// Runs `wallet audit` on `data`; its exit status, report and stderr.
pub fn audit(data: &Path, args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wallet"))
        .args(["audit", "--json", "--data-dir"])
        .arg(data)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("wallet audit runs");
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), report, stderr)
}

fn copy(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success());
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let answer = request.bearer_auth(ADMIN).send().await.expect("an answer");
    (answer.status(), answer.json().await.unwrap_or(Value::Null))
}

/// A server on `data` where alice has 1,000.00 USD for bob.
async fn started(data: &Path) -> (Server, Api) {
    let server = Server::start(data);
    let api = Api::new(&server);
    api.open("alice", "alice").await;
    api.open("bob", "bob").await;
    api.deposit("alice", "1000.00").await;
    (server, api)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_replays_two_versions_and_names_the_first_tampered_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (mut server, api) = started(&data).await;
    for _ in 0..10 {
        let (status, body) = api.transfer("alice", "bob", "1.00", &id()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let then = now_rfc3339();
    let balances_then = (api.cents("alice").await, api.cents("bob").await);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let deploy = api
        .client
        .post(format!("{}/v1/admin/versions", api.url))
        .header("content-type", "application/wasm")
        .body(EARLIER_RELEASE.to_vec());
    assert_eq!(send(deploy).await.0, StatusCode::CREATED);
    let hash = VersionHash::of(EARLIER_RELEASE).to_string();
    let activate = api
        .client
        .post(format!("{}/v1/admin/versions/{hash}/activate", api.url))
        .json(&json!({"force_reason": "the same rules, rebuilt"}));
    assert_eq!(send(activate).await.0, StatusCode::OK);
    for _ in 0..10 {
        let (status, body) = api.transfer("bob", "alice", "0.50", &id()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    api.caught_up().await;
    server.stop();

    let (passed, report, stderr) = audit(&data, &["--at", &then]);
    assert!(passed, "{stderr}");
    let versions = report["versions"].as_object().expect("versions");
    assert_eq!(versions.len(), 2, "{report}");
    assert!(versions[&hash].as_u64() >= Some(10), "{report}");
    assert_eq!(report["sums"], json!({"USD": 0}), "{report}");
    assert!(report["accounts_compared"].as_u64() >= Some(3), "{report}");
    let at = |account: &str| {
        report["balances_at"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["account"] == account))
            .and_then(|b| b["available"].as_i64())
    };
    assert_eq!(
        (at("alice"), at("bob")),
        (Some(balances_then.0), Some(balances_then.1)),
        "{report}"
    );

    // A stored component that no longer hashes to its name.
    let tampered = dir.path().join("version-tampered");
    copy(&data, &tampered);
    {
        let store = open_store(&tampered);
        let mut bytes = EARLIER_RELEASE.to_vec();
        bytes[100] ^= 1;
        store
            .tamper_version(VersionHash::of(EARLIER_RELEASE), &bytes)
            .expect("tampers");
        store.flush().expect("flushes");
    }
    let (passed, _, stderr) = audit(&tampered, &[]);
    assert!(!passed);
    assert!(
        stderr.contains(&format!("stored version {hash}")),
        "{stderr}"
    );

    // One byte of one event record.
    let tampered = dir.path().join("events-tampered");
    copy(&data, &tampered);
    let segment = std::fs::read_dir(tampered.join("partition-0/state/events"))
        .expect("the event log")
        .filter_map(|e| Some(e.ok()?.path()))
        .min()
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("reads");
    let written = bytes.iter().rposition(|&b| b != 0).expect("records");
    bytes[written / 2] ^= 0x01;
    std::fs::write(&segment, bytes).expect("writes");
    let (passed, _, stderr) = audit(&tampered, &[]);
    assert!(!passed);
    assert!(
        stderr.contains(
            &segment
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .to_string()
        ),
        "{stderr}"
    );
}

/// `GET .../balance?at=` answers from the read models exactly what the
/// audit's replay computes for that time, at several points of a history
/// that moves money both ways and opens an account midway.
#[tokio::test(flavor = "multi_thread")]
async fn balances_at_past_times_equal_the_audits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (mut server, api) = started(&data).await;
    let mut times = vec![("1970-01-01T00:00:00Z".to_string(), false)];
    for round in 0..6 {
        if round == 3 {
            api.open("carol", "carol").await;
        }
        for _ in 0..round + 1 {
            let (status, body) = api.transfer("alice", "bob", "3.25", &id()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, body) = api.transfer("bob", "alice", "1.10", &id()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if round >= 3 {
            api.deposit("carol", "7.00").await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        times.push((now_rfc3339(), true));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.caught_up().await;
    let accounts = ["alice", "bob", "carol", "external:bank"];
    let mut answered = Vec::new();
    for (at, _) in &times {
        for account in accounts {
            let path = format!("/v1/wallet/accounts/{account}/balance?currency=USD&at={at}");
            let (status, body) = api.get(Some(ADMIN), &path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            let cents =
                |field: &str| crate::harness::parse_cents(body[field].as_str().expect("an amount"));
            answered.push((at.clone(), account, cents("available"), cents("reserved")));
        }
    }
    server.stop();

    for (at, moved) in &times {
        let (passed, report, stderr) = audit(&data, &["--at", at]);
        assert!(passed, "{stderr}");
        let balances = report["balances_at"].as_array().expect("balances");
        assert_eq!(balances.is_empty(), !moved, "{at}: {report}");
        for (_, account, available, reserved) in answered.iter().filter(|a| a.0 == *at) {
            let audited = balances
                .iter()
                .find(|b| b["account"] == *account && b["currency"] == "USD")
                .map_or((0, 0), |b| {
                    let field = |f: &str| b[f].as_i64().expect("an amount");
                    (field("available"), field("reserved"))
                });
            assert_eq!(audited, (*available, *reserved), "{account} at {at}");
        }
    }
    // Moved by then: the history is not all at one point.
    let alice: Vec<i64> = answered
        .iter()
        .filter(|a| a.1 == "alice")
        .map(|a| a.2)
        .collect();
    assert!(alice.windows(2).all(|w| w[0] != w[1]), "{alice:?}");
}

/// A node killed under load leaves entries it appended but never applied,
/// and state it never flushed: the audit covers what it applied, and
/// passes.
#[tokio::test(flavor = "multi_thread")]
async fn an_audit_of_a_node_killed_under_load_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (mut server, _) = started(&data).await;
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let api = Api::new(&server);
            tokio::spawn(async move {
                while let Ok((StatusCode::OK, _)) =
                    api.try_transfer("alice", "bob", "0.01", &id()).await
                {}
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    for client in clients {
        let _ = client.await;
    }
    let (passed, report, stderr) = audit(&data, &[]);
    assert!(passed, "{stderr}");
    assert!(report["batches"].as_u64() > Some(10), "{report}");
    assert_eq!(report["sums"], json!({"USD": 0}), "{report}");
}

/// The audit takes the partition count the data directory records (the map
/// its partitions applied calls by), and names a partition that is missing
/// rather than auditing the others under another map.
#[test]
fn an_audit_takes_the_recorded_partition_count() {
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(data.path().join("partition-0")).expect("a partition directory");
    std::fs::write(data.path().join("partitions"), "2\n").expect("the count");
    let (passed, _, stderr) = audit(data.path(), &[]);
    assert!(!passed);
    assert!(
        stderr.contains("records 2 partitions") && stderr.contains("partition-1 is missing"),
        "{stderr}"
    );
}

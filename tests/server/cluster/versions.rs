//! The second rules version (the daily limit) deployed through one member,
//! verified and activated under load: no request fails, every member
//! switches at the same log index (one that was down catches up by
//! snapshot, schedule included), new transfers follow the new rule while
//! old ones stand, each member's command archive replays from genesis,
//! every batch through the version the log scheduled for it, and
//! `wallet audit` passes over the history both versions wrote. The same
//! for a version that changes the state's layout: its migration runs on
//! every member at the switch, and in every replay and audit.

use super::{Cluster, check, open_and_fund, transfer_until};
use crate::audit::audit;
use crate::harness::{ADMIN, Api};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// This build's rules plus a daily outgoing limit of 10,000 per client.
const DAILY_LIMIT_RELEASE: &[u8] =
    include_bytes!("../../../guest-statemachine/releases/statemachine-2.5.0+daily-limit.wasm");

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let answer = request.bearer_auth(ADMIN).send().await.expect("an answer");
    let status = answer.status();
    let body = answer.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Runs a verification through `api`; its report.
async fn verify(api: &Api, hash: &str) -> Value {
    let answer = api
        .client
        .post(format!("{}/v1/admin/versions/{hash}/verify", api.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::OK);
    let text = answer.text().await.expect("a body");
    let last = text.lines().last().expect("a report line");
    let last: Value = serde_json::from_str(last).expect("JSON");
    last["report"].clone()
}

/// Alice's transfer of `amount` USD to the merchant, as alice (apart from
/// the accounts the load moves money between).
async fn alice_sends(api: &Api, token: &str, amount: &str) -> (StatusCode, Value) {
    let body = json!({"from_account": "alice", "to_account": "merchant", "amount": amount,
                      "currency": "USD", "transaction_id": uuid::Uuid::new_v4().to_string()});
    api.post(Some(token), "/v1/wallet/balance_transfer", body)
        .await
}

fn utc_day() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.expect("after 1970").as_secs() / 86_400
}

async fn applied(api: &Api) -> u64 {
    let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
    status["partitions"][0]["applied_index"]
        .as_u64()
        .expect("an index")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_activated_under_load_switches_every_member_at_one_index() {
    let mut cluster = Cluster::start(&["--snapshot-entries", "100"]);
    let leader = cluster.leader().await;
    open_and_fund(&cluster.api(leader)).await;
    let alice = cluster.api(leader).token("client", Some("alice")).await;
    cluster.api(leader).open("alice", "alice").await;
    cluster.api(leader).open("merchant", "merchant").await;
    cluster.api(leader).deposit("alice", "30000.00").await;
    // Under the rules without a limit, before the switch.
    let (status, before) = alice_sends(&cluster.api(leader), &alice, "9000.00").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let follower = (leader + 1) % 3;
    let behind = (leader + 2) % 3;
    cluster.kill9(behind);
    let apis = Arc::new(vec![cluster.api(leader), cluster.api(follower)]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|seed| tokio::spawn(transfer_until(apis.clone(), seed * 31 + 5, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Through a follower: both changes are forwarded to the leader.
    let api = cluster.api(follower);
    let (hash, report) = deploy_and_verify(&api, DAILY_LIMIT_RELEASE).await;
    // History stays under the limit: identical, with the limit's own
    // running totals as new state.
    assert!(report["own_state_writes"].as_u64() > Some(0), "{report}");
    let from = activate_and_pass(&api, &hash).await;
    // The new rule counts what alice sends from the switch on: 9,000 more
    // pass, and 2,000 after them would pass the day's 10,000. (Both
    // within one UTC day, or once more.)
    for attempt in 0.. {
        let day = utc_day();
        let (status, body) = alice_sends(&api, &alice, "9000.00").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, refused) = alice_sends(&api, &alice, "2000.00").await;
        if utc_day() != day && attempt == 0 {
            continue;
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["reason"], "daily_limit_exceeded", "{refused}");
        break;
    }
    // The active version verified again over a history it partly ran is
    // identical to itself: the totals it keeps from its activation on are
    // read from the recorded state, not from what the verification kept
    // of its own before the switch.
    let report = verify(&api, &hash).await;
    assert_eq!(report["identical"], report["batches"], "{report}");
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }
    // The transfer before the switch stands.
    let id = before["transaction_id"].as_str().expect("an id");
    let (status, old) = api
        .get(Some(ADMIN), &format!("/v1/wallet/transfers/{id}"))
        .await;
    assert_eq!(
        (status, &old["status"]),
        (StatusCode::OK, &json!("success"))
    );
    cluster.start_node(behind);
    check(&cluster, &outcomes).await;
    let migrations = switched_everywhere(cluster, &hash, from).await;
    assert!(migrations.iter().all(|m| *m == json!([])), "{migrations:?}");
}

/// Deploys `component` through `api` and verifies it over the whole
/// history, which it must find identical; its hash and the report.
async fn deploy_and_verify(api: &Api, component: &[u8]) -> (String, Value) {
    let deploy = api
        .client
        .post(format!("{}/v1/admin/versions", api.url))
        .header("content-type", "application/wasm")
        .body(component.to_vec());
    let (status, deployed) = send(deploy).await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    let hash = deployed["hash"].as_str().expect("a hash").to_owned();
    let report = verify(api, &hash).await;
    assert!(report["batches"].as_u64() > Some(0), "{report}");
    assert_eq!(report["identical"], report["batches"], "{report}");
    (hash, report)
}

/// Activates `hash` through `api`, then waits until the log is far enough
/// past the switch to be snapshotted and purged beyond it; the index the
/// version runs from.
async fn activate_and_pass(api: &Api, hash: &str) -> u64 {
    let activate = api
        .client
        .post(format!("{}/v1/admin/versions/{hash}/activate", api.url))
        .json(&json!({}));
    let (status, activated) = send(activate).await;
    assert_eq!(status, StatusCode::OK, "{activated}");
    let from = activated["active_from"].as_u64().expect("an index");
    let deadline = Instant::now() + Duration::from_secs(120);
    while applied(api).await < from + 400 {
        assert!(Instant::now() < deadline, "too slow");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    from
}

/// Every member runs `hash` from `from` and lists the same versions (once
/// each applied the whole log: the last verification's record may not have
/// reached them all); then each archive replays, every batch through the
/// version the log scheduled for it, and `wallet audit` passes; the
/// migrations each audit ran.
async fn switched_everywhere(mut cluster: Cluster, hash: &str, from: u64) -> Vec<Value> {
    cluster.quiesce().await;
    let mut lists = Vec::new();
    for i in 0..3 {
        let api = cluster.api(i);
        let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
        assert_eq!(status["partitions"][0]["active_version"], hash);
        let (code, list) = api.get(Some(ADMIN), "/v1/admin/versions").await;
        assert_eq!(code, StatusCode::OK, "{list}");
        lists.push(list);
    }
    assert!(lists.iter().all(|l| *l == lists[0]), "{lists:?}");
    let versions = &lists[0]["versions"];
    assert_eq!(versions[1]["hash"], hash);
    assert_eq!(versions[1]["state"], "active");
    assert_eq!(versions[1]["active_from"], from);
    assert_eq!(versions[0]["state"], "retired");
    cluster.stop_and_replay().await;
    (0..3)
        .map(|i| {
            let (passed, report, stderr) = audit(&cluster.data(i), &[]);
            assert!(passed, "member {i}: {report} {stderr}");
            report["migrations"].clone()
        })
        .collect()
}

/// This build's rules storing accounts in a compact layout, with the
/// migration that rewrites the accounts earlier versions stored.
const COMPACT_RELEASE: &[u8] =
    include_bytes!("../../../guest-statemachine/releases/statemachine-2.5.0+compact-accounts.wasm");

#[tokio::test(flavor = "multi_thread")]
async fn a_version_that_changes_the_state_layout_migrates_every_member_at_its_switch() {
    let mut cluster = Cluster::start(&["--snapshot-entries", "100"]);
    let leader = cluster.leader().await;
    open_and_fund(&cluster.api(leader)).await;
    let follower = (leader + 1) % 3;
    let behind = (leader + 2) % 3;
    cluster.kill9(behind);
    let load = |apis: Vec<Api>, seed: u64, stop: &Arc<AtomicBool>| {
        let apis = Arc::new(apis);
        (0..4)
            .map(|n| tokio::spawn(transfer_until(apis.clone(), seed + n * 31, stop.clone())))
            .collect::<Vec<_>>()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(vec![cluster.api(leader), cluster.api(follower)], 7, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The layout differs, the history's meaning does not: compared in the
    // candidate's layout, every batch is identical.
    let api = cluster.api(follower);
    let (hash, report) = deploy_and_verify(&api, COMPACT_RELEASE).await;
    assert_eq!(report["own_state_writes"], 0, "{report}");
    let from = activate_and_pass(&api, &hash).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }

    // The member that was down catches up past the switch (by snapshot,
    // the log being purged beyond it) and then serves batches that read
    // every account in the new layout, like the others.
    cluster.start_node(behind);
    let stop = Arc::new(AtomicBool::new(false));
    let apis = (0..3).map(|i| cluster.api(i)).collect();
    let clients = load(apis, 11, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }
    check(&cluster, &outcomes).await;
    // The active version, verified again over the history that holds its
    // own switch, is identical to itself.
    let report = verify(&api, &hash).await;
    assert_eq!(report["identical"], report["batches"], "{report}");
    // Each audit ran the migration where the log switched, over every
    // account opened before it.
    for migrations in switched_everywhere(cluster, &hash, from).await {
        assert_eq!(migrations.as_array().map(Vec::len), Some(1), "{migrations}");
        assert_eq!(migrations[0]["version"], hash.as_str(), "{migrations}");
        assert_eq!(migrations[0]["index"], from, "{migrations}");
        assert!(migrations[0]["writes"].as_u64() > Some(16), "{migrations}");
        assert!(migrations[0].get("failure").is_none(), "{migrations}");
    }
}

//! A state-machine version deployed through one member and activated
//! under load: every member switches at the same log index (one that was
//! down catches up by snapshot, schedule included), and each member's
//! command archive replays from genesis, every batch through the version
//! the log scheduled for it, to the head the group holds.

use super::{Cluster, check, open_and_fund, transfer_until};
use crate::harness::{ADMIN, Api};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The release before this build's: the same rules, built differently.
const EARLIER_RELEASE: &[u8] =
    include_bytes!("../../../guest-statemachine/releases/statemachine-2.0.0.wasm");

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let answer = request.bearer_auth(ADMIN).send().await.expect("an answer");
    let status = answer.status();
    let body = answer.json().await.unwrap_or(Value::Null);
    (status, body)
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
    let deploy = api
        .client
        .post(format!("{}/v1/admin/versions", api.url))
        .header("content-type", "application/wasm")
        .body(EARLIER_RELEASE.to_vec());
    let (status, deployed) = send(deploy).await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    let hash = deployed["hash"].as_str().expect("a hash").to_owned();
    let activate = api
        .client
        .post(format!("{}/v1/admin/versions/{hash}/activate", api.url))
        .json(&json!({"force_reason": "the same rules, rebuilt"}));
    let (status, activated) = send(activate).await;
    assert_eq!(status, StatusCode::OK, "{activated}");
    let from = activated["active_from"].as_u64().expect("an index");

    // Far enough past the switch that the log is snapshotted and purged
    // beyond it.
    let deadline = Instant::now() + Duration::from_secs(120);
    while applied(&cluster.api(leader)).await < from + 400 {
        assert!(Instant::now() < deadline, "too slow");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }
    cluster.start_node(behind);
    check(&cluster, &outcomes).await;

    let mut lists = Vec::new();
    for i in 0..3 {
        let api = cluster.api(i);
        let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
        assert_eq!(status["partitions"][0]["active_version"], hash.as_str());
        let (code, list) = api.get(Some(ADMIN), "/v1/admin/versions").await;
        assert_eq!(code, StatusCode::OK, "{list}");
        lists.push(list);
    }
    assert!(lists.iter().all(|l| *l == lists[0]), "{lists:?}");
    let versions = &lists[0]["versions"];
    assert_eq!(versions[1]["hash"], hash.as_str());
    assert_eq!(versions[1]["state"], "active");
    assert_eq!(versions[1]["active_from"], from);
    assert_eq!(versions[0]["state"], "retired");
    // Each batch replays through the version the log scheduled for it.
    cluster.stop_and_replay().await;
}

//! A node running four partitions: transfers inside one stay one command;
//! transfers across two are coordinated by TC/C or saga and answered once
//! they are done, with no money made or lost on the way.

use super::*;
use crate::coordinator::Mode;
use crate::node::PartitionMap;
use serde_json::json;

const PARTITIONS: u32 = 4;

/// An account name in another partition than `of`'s.
fn elsewhere(of: &str, prefix: &str) -> String {
    let map = PartitionMap::new(PARTITIONS);
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| map.of(id) != map.of(of))
        .expect("an account elsewhere")
}

/// An account name in the same partition as `of`.
fn beside(of: &str, prefix: &str) -> String {
    let map = PartitionMap::new(PARTITIONS);
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| map.of(id) == map.of(of))
        .expect("an account beside")
}

async fn open(app: &App, account: &str) {
    let body = json!({"account_id": account, "owner": account});
    let created = app.post("/v1/wallet/accounts", Some(ADMIN), &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
}

/// The USD in flight across the partitions and the journal records left,
/// once they are none or after 5 s.
async fn settled_in_flight(app: &App) -> (i64, usize) {
    let mut in_flight = app.probe.in_flight("USD").await;
    for _ in 0..250 {
        if in_flight == (0, 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        in_flight = app.probe.in_flight("USD").await;
    }
    in_flight
}

async fn event_types(app: &App, id: &str) -> (String, Vec<String>) {
    let answer = app
        .get(&format!("/v1/wallet/transfers/{id}"), Some(ADMIN))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let types = answer.json["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("a type").to_owned())
        .collect();
    (
        answer.json["status"].as_str().expect("a status").to_owned(),
        types,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_across_partitions_completes_once_in_both_modes() {
    for mode in [Mode::Tcc, Mode::Saga] {
        let app = app_with(PARTITIONS, mode).await;
        let far = elsewhere("alice", "far");
        open(&app, &far).await;
        let body = transfer("alice", &far, "12.34", "USD", &txid(1));
        let first = app
            .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
            .await;
        assert_eq!(first.status, 200, "{mode:?}: {}", first.text);
        assert_eq!(first.json["status"], "success");
        // Both partitions it wrote are in the position.
        let position = first.header("wallet-position").expect("a position");
        assert_eq!(position.split(',').count(), 2, "{position}");

        let retry = app
            .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
            .await;
        assert_eq!(retry.status, 200, "{}", retry.text);
        assert_eq!(retry.json, first.json);
        assert_eq!(app.balance("alice", "USD").await, 10_000 - 1234);
        assert_eq!(app.balance(&far, "USD").await, 1234);
        // The bank's shards sum to what was deposited.
        assert_eq!(app.balance(BANK, "USD").await, -10_000);
        // Nothing is left in flight or in a journal, once the saga's
        // closing entry is in.
        assert_eq!(settled_in_flight(&app).await, (0, 0), "{mode:?}");

        let (status, types) = event_types(&app, &txid(1)).await;
        assert_eq!(status, "success", "{mode:?} {types:?}");
        let expected: &[&str] = match mode {
            Mode::Tcc => &[
                "funds_reserved",
                "credit_pending",
                "pending_credited",
                "reservation_settled",
            ],
            Mode::Saga => &["sent", "received"],
        };
        assert_eq!(types, expected, "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_to_a_missing_account_elsewhere_fails_with_its_money_back() {
    for mode in [Mode::Tcc, Mode::Saga] {
        let app = app_with(PARTITIONS, mode).await;
        let nobody = elsewhere("alice", "nobody");
        let body = transfer("alice", &nobody, "5.00", "USD", &txid(2));
        let answer = app
            .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
            .await;
        assert_eq!(answer.status, 422, "{mode:?}: {}", answer.text);
        assert_eq!(answer.code(), "account_not_found");
        let again = app
            .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
            .await;
        assert_eq!(again.json, answer.json);
        assert_eq!(app.balance("alice", "USD").await, 10_000);
        let alice = app.get("/v1/wallet/accounts/alice", Some(ADMIN)).await;
        assert_eq!(
            alice.json["balances"]["USD"]["reserved"], "0.00",
            "{}",
            alice.text
        );
        assert_eq!(app.probe.in_flight("USD").await, (0, 0), "{mode:?}");
        let (status, _) = event_types(&app, &txid(2)).await;
        assert_eq!(status, "failed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inside_a_partition_a_transfer_stays_one_command() {
    let app = app_with(PARTITIONS, Mode::Tcc).await;
    let near = beside("alice", "near");
    open(&app, &near).await;
    let body = transfer("alice", &near, "1.00", "USD", &txid(3));
    let answer = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let (_, types) = event_types(&app, &txid(3)).await;
    assert_eq!(types, ["debited", "credited"]);
    let position = answer.header("wallet-position").expect("a position");
    assert_eq!(position.split(',').count(), 1, "{position}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deposits_use_the_bank_shard_beside_the_account() {
    let app = app_with(PARTITIONS, Mode::Tcc).await;
    let far = elsewhere("alice", "far");
    open(&app, &far).await;
    let body =
        json!({"account_id": far, "amount": "3.00", "currency": "USD", "transaction_id": txid(4)});
    let answer = app.post("/v1/wallet/deposit", Some(ADMIN), &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let (_, types) = event_types(&app, &txid(4)).await;
    assert_eq!(types, ["debited", "credited"]);
    assert_eq!(app.balance(BANK, "USD").await, -10_300);
    assert_eq!(app.probe.in_flight("USD").await, (0, 0));
}

/// This build's rules with a client's daily limit, which the admin's
/// transfers here do not meet: it reproduces their history exactly.
const OTHER_RELEASE: &[u8] =
    include_bytes!("../../../../guest-statemachine/releases/statemachine-2.5.0+daily-limit.wasm");

#[tokio::test(flavor = "multi_thread")]
async fn a_version_is_verified_and_activated_in_every_partition() {
    let app = app_with(PARTITIONS, Mode::Tcc).await;
    let far = elsewhere("alice", "far");
    open(&app, &far).await;
    let body = transfer("alice", &far, "2.00", "USD", &txid(5));
    let moved = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);

    let deployed = app
        .post_raw(
            "/v1/admin/versions",
            Some(ADMIN),
            Some("application/wasm"),
            OTHER_RELEASE.to_vec(),
        )
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text);
    let position = deployed.header("wallet-position").expect("a position");
    assert_eq!(
        position.split(',').count(),
        PARTITIONS as usize,
        "{position}"
    );
    let hash = crate::sm::VersionHash::of(OTHER_RELEASE).to_string();

    // Not verified anywhere: refused, and no partition switches.
    let activate = format!("/v1/admin/versions/{hash}/activate");
    let refused = app.post(&activate, Some(ADMIN), &json!({})).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.code(), "not_verified");

    let verified = app
        .post(
            &format!("/v1/admin/versions/{hash}/verify"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let report: serde_json::Value =
        serde_json::from_str(verified.text.lines().last().expect("a report")).expect("JSON");
    let report = &report["report"];
    // Every partition's history: at least its system account's opening
    // and the transfer's steps.
    assert!(
        report["batches"].as_u64() >= Some(2 * u64::from(PARTITIONS)),
        "{report}"
    );
    assert_eq!(report["identical"], report["batches"], "{report}");

    let activated = app.post(&activate, Some(ADMIN), &json!({})).await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    let body = transfer("alice", &far, "3.00", "USD", &txid(6));
    let moved = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let status = app.get("/v1/cluster/status", Some(ADMIN)).await;
    for p in 0..PARTITIONS as usize {
        assert_eq!(
            status.json["partitions"][p]["active_version"],
            hash.as_str(),
            "partition {p}: {}",
            status.text
        );
    }
    assert_eq!(app.balance(&far, "USD").await, 500);
}

/// One worker's transfers among `accounts`, each retried with its id
/// while it is answered 503 (a partition splitting), until `stop`: what
/// each one's definitive answer said, `(from, to, cents, moved)`.
async fn transfer_until(
    http: reqwest::Client,
    base: String,
    accounts: Vec<String>,
    mut seed: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(String, String, i64, bool, String)> {
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut outcomes = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let from = accounts[(next() % accounts.len() as u64) as usize].clone();
        let to = accounts[(next() % accounts.len() as u64) as usize].clone();
        let cents = (next() % 300 + 1) as i64;
        let id = uuid::Uuid::new_v4().to_string();
        let amount = format!("{}.{:02}", cents / 100, cents % 100);
        let body = transfer(&from, &to, &amount, "USD", &id);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answer = http
                .post(format!("{base}/v1/wallet/balance_transfer"))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .expect("send");
            match answer.status().as_u16() {
                200 => break outcomes.push((from, to, cents, true, id)),
                422 => break outcomes.push((from, to, cents, false, id)),
                503 => {}
                other => panic!("{id}: {other} {}", answer.text().await.unwrap_or_default()),
            }
            assert!(std::time::Instant::now() < deadline, "{id} never answered");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Room for the tests running beside this one.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    outcomes
}

/// Partitions split while transfers go on within and across them (in
/// both modes): every transfer is answered once, each account holds
/// exactly what the transfers answered 200 moved, nothing stays in flight,
/// and calls are routed to the new partitions.
#[tokio::test(flavor = "multi_thread")]
async fn partitions_split_while_transfers_go_on_and_each_moves_money_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for mode in [Mode::Tcc, Mode::Saga] {
        let app = app_with(2, mode).await;
        let accounts: Vec<String> = (0..12).map(|i| format!("acct-{i}")).collect();
        for (i, account) in accounts.iter().enumerate() {
            open(&app, account).await;
            let body = json!({"account_id": account, "amount": "100.00", "currency": "USD",
                              "transaction_id": txid(100 + i as u128)});
            let deposited = app.post("/v1/wallet/deposit", Some(ADMIN), &body).await;
            assert_eq!(deposited.status, 200, "{}", deposited.text);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2u64)
            .map(|i| {
                let (http, base) = (app.http.clone(), app.base.clone());
                let worker = transfer_until(http, base, accounts.clone(), 0x9e37 + i, stop.clone());
                tokio::spawn(worker)
            })
            .collect();
        let pause = std::time::Duration::from_millis(300);
        tokio::time::sleep(pause).await;
        for (parent, child) in [(0, 2), (1, 3)] {
            let path = format!("/v1/cluster/partitions/{parent}/split");
            let split = app.post(&path, Some(ADMIN), &json!({})).await;
            assert_eq!(split.status, 200, "{mode:?}: {}", split.text);
            assert_eq!(split.json["child"], child, "{}", split.text);
            assert_eq!(split.json["partitions"], child + 1, "{}", split.text);
            tokio::time::sleep(pause).await;
        }
        stop.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for worker in workers {
            outcomes.extend(worker.await.expect("a worker"));
        }
        assert!(
            outcomes.iter().filter(|o| o.3).count() > 20,
            "{mode:?}: too few moved"
        );

        let in_flight = settled_in_flight(&app).await;
        assert_eq!(in_flight, (0, 0), "{mode:?}: left in flight");
        let mut expected: std::collections::BTreeMap<&str, i64> =
            accounts.iter().map(|a| (a.as_str(), 10_000)).collect();
        for (from, to, cents, moved, _) in &outcomes {
            if *moved {
                *expected.get_mut(from.as_str()).expect("an account") -= cents;
                *expected.get_mut(to.as_str()).expect("an account") += cents;
            }
        }
        for (account, cents) in &expected {
            assert_eq!(
                app.balance(account, "USD").await,
                *cents,
                "{mode:?}: {account}"
            );
        }
        for (_, _, _, moved, id) in outcomes.iter().step_by(5) {
            let (status, _) = event_types(&app, id).await;
            assert_eq!(status, if *moved { "success" } else { "failed" }, "{id}");
        }
        // Every partition's bank shard: together, what was deposited.
        assert_eq!(app.balance(BANK, "USD").await, -10_000 - 12 * 10_000);
        let status = app.get("/v1/cluster/status", Some(ADMIN)).await;
        let partitions = status.json["partitions"].as_array().expect("partitions");
        assert_eq!(partitions.len(), 4, "{}", status.text);
        // The new partitions took accounts, and took calls for them.
        let map = PartitionMap::new(2);
        let map = map.split(0).expect("splits").0;
        let map = map.split(1).expect("splits").0;
        // Each partition's range in the status is the map's.
        for (p, partition) in partitions.iter().enumerate() {
            let range = map.range(p as u32).expect("mapped");
            assert_eq!(partition["range"]["start"], range.start, "{p}");
            assert_eq!(partition["range"]["end"], range.end, "{p}");
        }
        let moved: Vec<&String> = accounts.iter().filter(|a| map.of(a) >= 2).collect();
        assert!(!moved.is_empty(), "no account moved");
        for account in moved {
            let child = app.probe.node.partition(map.of(account)).expect("open");
            let view = child.views().account(account).expect("reads");
            assert!(
                view.is_some(),
                "{account} is not in partition {}",
                map.of(account)
            );
        }
    }
}

/// A split the map allocated and whose driver stopped before the parent
/// split (partition 0's leader went) is completed by partition 0's
/// leader, under the id it was allocated with; a split of a partition
/// that does not exist is refused and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_split_left_halfway_is_completed_by_partition_0s_leader() {
    use crate::node::{Allocation, MapChange, MapOutcome};
    let app = app_with(2, Mode::Tcc).await;
    let node = &app.probe.node;
    let refused = app
        .post("/v1/cluster/partitions/7/split", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.code(), "split_refused");
    let allocate = MapChange::Allocate {
        base: PartitionMap::new(2),
        parent: 1,
        id: 5,
    };
    let first = node.partition(0).expect("open");
    let (outcome, _) = first.change_map(allocate).await.expect("applied");
    let allocation = Allocation {
        parent: 1,
        child: 2,
        id: 5,
    };
    assert_eq!(outcome, MapOutcome::Allocated(allocation));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let split = || {
        let parent = node.partition(1).expect("open");
        parent.store().splits().expect("reads")
    };
    while node.partition_count() < 3 || split().is_none() {
        assert!(std::time::Instant::now() < deadline, "not completed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let child = split().expect("split").children[0];
    assert_eq!((child.partition, child.id), (2, 5));
    // The map routes to the new partition: an account there takes calls.
    let map = PartitionMap::new(2).split(1).expect("splits").0;
    let there = (0..)
        .map(|i| format!("there-{i}"))
        .find(|id| map.of(id) == 2)
        .expect("an account in the new partition");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body = json!({"account_id": there, "owner": there});
        let created = app.post("/v1/wallet/accounts", Some(ADMIN), &body).await;
        if created.status == 201 {
            break;
        }
        assert_eq!(created.status, 503, "{}", created.text);
        assert!(std::time::Instant::now() < deadline, "never routed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = transfer("alice", &there, "1.00", "USD", &txid(9));
    let moved = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(app.balance(&there, "USD").await, 100);
    let held = node.partition(2).expect("open").views().account(&there);
    assert!(held.expect("reads").is_some(), "held by the new partition");
}

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
        let mut in_flight = app.probe.in_flight("USD").await;
        for _ in 0..100 {
            if in_flight == (0, 0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            in_flight = app.probe.in_flight("USD").await;
        }
        assert_eq!(in_flight, (0, 0), "{mode:?}");

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

/// The release before this build's: the same rules, built differently.
const EARLIER_RELEASE: &[u8] =
    include_bytes!("../../../../guest-statemachine/releases/statemachine-2.0.0.wasm");

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
            EARLIER_RELEASE.to_vec(),
        )
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text);
    let position = deployed.header("wallet-position").expect("a position");
    assert_eq!(
        position.split(',').count(),
        PARTITIONS as usize,
        "{position}"
    );
    let hash = crate::sm::VersionHash::of(EARLIER_RELEASE).to_string();

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

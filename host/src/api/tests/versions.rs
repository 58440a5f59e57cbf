//! Deploying and activating state-machine versions through the edge.

use super::{ADMIN, app, transfer, txid};
use crate::sm::{RELEASE_HASH_HEX, VersionHash};
use serde_json::json;

/// An earlier release: the same rules for what these tests run (one
/// partition), built differently.
const EARLIER_RELEASE: &[u8] =
    include_bytes!("../../../../guest-statemachine/releases/statemachine-2.0.0.wasm");

#[tokio::test(flavor = "multi_thread")]
async fn a_version_deploys_once_and_activates_only_when_verified_or_forced() {
    let app = app().await;
    let listed = app.get("/v1/admin/versions", Some(ADMIN)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let versions = listed.json["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(versions.len(), 1, "{}", listed.text);
    assert_eq!(versions[0]["hash"], RELEASE_HASH_HEX);
    assert_eq!(versions[0]["state"], "active");

    let wasm = Some("application/wasm");
    let deploy = || {
        app.post_raw(
            "/v1/admin/versions",
            Some(ADMIN),
            wasm,
            EARLIER_RELEASE.to_vec(),
        )
    };
    let deployed = deploy().await;
    assert_eq!(deployed.status, 201, "{}", deployed.text);
    let hash = VersionHash::of(EARLIER_RELEASE).to_string();
    assert_eq!(deployed.json["hash"], hash.as_str());
    assert!(deployed.header("wallet-position").is_some());
    let again = deploy().await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["new"], false);
    assert_eq!(again.json["deployed_at"], deployed.json["deployed_at"]);

    let activate = format!("/v1/admin/versions/{hash}/activate");
    let refusals = [
        (activate.as_str(), json!({}), 409, "not_verified"),
        (
            activate.as_str(),
            json!({"force_reason": " "}),
            400,
            "invalid_reason",
        ),
        (
            activate.as_str(),
            json!({"force_reason": "test", "at_index": 1}),
            409,
            "index_passed",
        ),
        (activate.as_str(), json!({"at": 1}), 400, "invalid_body"),
        (
            "/v1/admin/versions/xyz/activate",
            json!({}),
            400,
            "invalid_version_hash",
        ),
    ];
    for (path, body, status, code) in refusals {
        let answer = app.post(path, Some(ADMIN), &body).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.code(), code, "{body}");
    }
    let unknown = format!("/v1/admin/versions/{}/activate", "0".repeat(64));
    let answer = app
        .post(&unknown, Some(ADMIN), &json!({"force_reason": "x"}))
        .await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    listed_with(&app, 2).await;

    let activated = app
        .post(
            &activate,
            Some(ADMIN),
            &json!({"force_reason": "the same rules, rebuilt"}),
        )
        .await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    let from = activated.json["active_from"].as_u64().expect("an index");
    let moved = app
        .post(
            "/v1/wallet/balance_transfer",
            Some(ADMIN),
            &transfer("alice", "bob", "1.00", "USD", &txid(1)),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(app.balance("bob", "USD").await, 100);
    let status = app.get("/v1/cluster/status", Some(ADMIN)).await;
    assert_eq!(
        status.json["partitions"][0]["active_version"],
        hash.as_str()
    );
    let versions = app.get("/v1/admin/versions", Some(ADMIN)).await.json["versions"].clone();
    assert_eq!(versions[0]["state"], "retired");
    assert_eq!(versions[1]["state"], "active");
    assert_eq!(versions[1]["active_from"], from);
    assert_eq!(versions[1]["forced"], "the same rules, rebuilt");
}

/// The list, once it holds `count` versions.
async fn listed_with(app: &super::App, count: usize) -> serde_json::Value {
    let listed = app.get("/v1/admin/versions", Some(ADMIN)).await.json;
    assert_eq!(listed["versions"].as_array().map(Vec::len), Some(count));
    listed
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_that_imports_a_clock_or_randomness_or_is_no_component_is_refused() {
    let app = app().await;
    let importing = |name: &str| {
        wat::parse_str(format!(
            r#"(component (import "{name}" (instance (export "now" (func (result u64))))))"#
        ))
        .expect("the fixture parses")
    };
    let candidates = [
        (
            importing("wasi:clocks/wall-clock@0.2.0"),
            "wasi:clocks/wall-clock",
        ),
        (importing("wasi:random/random@0.2.0"), "wasi:random/random"),
        (b"not a component".to_vec(), ""),
        (
            wat::parse_str("(component)").expect("parses"),
            "wallet:statemachine",
        ),
    ];
    for (bytes, named) in candidates {
        let answer = app
            .post_raw(
                "/v1/admin/versions",
                Some(ADMIN),
                Some("application/wasm"),
                bytes,
            )
            .await;
        assert_eq!(answer.status, 422, "{}", answer.text);
        assert_eq!(answer.code(), "invalid_version");
        assert!(answer.text.contains(named), "{}", answer.text);
    }
    listed_with(&app, 1).await;
}

/// Components that break the rules, shared with the state-machine tests.
#[allow(dead_code)]
#[path = "../../../tests/statemachine/fixtures.rs"]
mod fixtures;

/// Two transfers of 6,000 USD from alice to bob (ids 2 and 3), each
/// answered 200; their log indexes.
async fn alice_pays_bob_6000_twice(app: &super::App) -> Vec<u64> {
    let alice = app.client("alice").await;
    let mut positions = Vec::new();
    for n in 2..4 {
        let paid = transfer("alice", "bob", "6000.00", "USD", &txid(n));
        let paid = app
            .post("/v1/wallet/balance_transfer", Some(&alice), &paid)
            .await;
        assert_eq!(paid.status, 200, "{}", paid.text);
        let position = paid.header("wallet-position").expect("a position");
        let index = position.strip_prefix("0:").expect("partition 0");
        positions.push(index.parse::<u64>().expect("an index"));
    }
    positions
}

/// Deploys `component` as a new version; its hash.
async fn deployed(app: &super::App, component: &[u8]) -> String {
    let answer = app
        .post_raw(
            "/v1/admin/versions",
            Some(ADMIN),
            Some("application/wasm"),
            component.to_vec(),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    VersionHash::of(component).to_string()
}

/// The JSON lines of a verification, the last one (the report) first.
async fn verify(app: &super::App, hash: &str) -> (serde_json::Value, usize) {
    verify_from(app, hash, "genesis").await
}

async fn verify_from(app: &super::App, hash: &str, from: &str) -> (serde_json::Value, usize) {
    let answer = app
        .post(
            &format!("/v1/admin/versions/{hash}/verify?from={from}"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<serde_json::Value> = answer
        .text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let last = lines.last().cloned().expect("a report line");
    (last, lines.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_version_activates_without_a_reason_and_a_differing_one_is_refused() {
    let app = app().await;
    let same = deployed(&app, EARLIER_RELEASE).await;
    let (last, _) = verify(&app, &same).await;
    let report = &last["report"];
    assert!(report["batches"].as_u64() > Some(1), "{last}");
    assert_eq!(report["identical"], report["batches"], "{last}");
    assert!(last["recorded_at"].is_string(), "{last}");
    let versions = listed_with(&app, 2).await["versions"].clone();
    assert_eq!(versions[1]["state"], "verified");
    assert_eq!(versions[1]["verification"]["differing"], 0);

    // A version that loops forever fails every batch the release applied:
    // the first differing batch is the group's first.
    let looping = deployed(&app, &fixtures::looping()).await;
    let (last, _) = verify(&app, &looping).await;
    let report = &last["report"];
    assert_eq!(report["identical"], 0, "{last}");
    assert_eq!(report["outcome_changed"], report["batches"], "{last}");
    let first = &report["differences"][0];
    assert_eq!(first["index"], versions[0]["active_from"], "{last}");
    assert_eq!(first["kind"], "outcome_changed");
    assert_eq!(first["recorded"], "batch applied");
    assert_eq!(first["candidate"], "batch failed: out of fuel");
    let refused = app
        .post(
            &format!("/v1/admin/versions/{looping}/activate"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.code(), "not_verified");

    let activated = app
        .post(
            &format!("/v1/admin/versions/{same}/activate"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    let unknown = app
        .post(
            &format!("/v1/admin/versions/{}/verify", "0".repeat(64)),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
}

/// This build's rules plus a daily outgoing limit of 10,000 per client.
const DAILY_LIMIT_RELEASE: &[u8] =
    include_bytes!("../../../../guest-statemachine/releases/statemachine-2.5.0+daily-limit.wasm");

#[tokio::test(flavor = "multi_thread")]
async fn a_new_rule_that_history_breaks_is_reported_at_the_batch_that_breaks_it() {
    let app = app().await;
    let deposit = json!({"account_id": "alice", "amount": "20000.00", "currency": "USD",
                         "transaction_id": txid(1)});
    let deposited = app.post("/v1/wallet/deposit", Some(ADMIN), &deposit).await;
    assert_eq!(deposited.status, 200, "{}", deposited.text);
    let positions = alice_pays_bob_6000_twice(&app).await;
    // The first 6,000 starts alice's day (new state, not a difference);
    // the second would have passed the limit.
    let limited = deployed(&app, DAILY_LIMIT_RELEASE).await;
    let (last, _) = verify(&app, &limited).await;
    let report = &last["report"];
    assert_eq!(report["outcome_changed"], 1, "{last}");
    assert_eq!(report["event_changed"], 0, "{last}");
    assert_eq!(report["state_changed_only"], 0, "{last}");
    assert!(report["own_state_writes"].as_u64() >= Some(1), "{last}");
    let first = &report["differences"][0];
    assert_eq!(first["index"], positions[1], "{last}");
    assert_eq!(first["recorded"], "call 0: accepted");
    assert_eq!(first["candidate"], "call 0: refused, daily_limit_exceeded");
    let refused = app
        .post(
            &format!("/v1/admin/versions/{limited}/activate"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.code(), "not_verified");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verification_from_a_snapshot_replays_the_entries_after_it_on_its_state() {
    let app = app().await;
    let limited = deployed(&app, DAILY_LIMIT_RELEASE).await;
    let refused = app
        .post(
            &format!("/v1/admin/versions/{limited}/verify?from=snapshot"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.code(), "no_snapshot");

    let deposit = json!({"account_id": "alice", "amount": "20000.00", "currency": "USD",
                         "transaction_id": txid(1)});
    let deposited = app.post("/v1/wallet/deposit", Some(ADMIN), &deposit).await;
    assert_eq!(deposited.status, 200, "{}", deposited.text);
    let snapshot = app.probe.snapshot().await;
    // Nothing replayed is no verification.
    let (last, _) = verify_from(&app, &limited, "snapshot").await;
    assert_eq!(last["error"], "empty_window", "{last}");

    // Only the state the snapshot holds funds these: on an empty state
    // both sides would refuse both alike.
    let positions = alice_pays_bob_6000_twice(&app).await;
    let (window, _) = verify_from(&app, &limited, "snapshot").await;
    let (whole, _) = verify(&app, &limited).await;
    let (window, whole) = (&window["report"], &whole["report"]);
    assert_eq!(window["from"], snapshot + 1, "{window}");
    assert_eq!(whole["from"], 1, "{whole}");
    assert!(
        window["batches"].as_u64() < whole["batches"].as_u64(),
        "{window} {whole}"
    );
    for report in [window, whole] {
        assert_eq!(report["outcome_changed"], 1, "{report}");
        assert_eq!(report["differences"][0]["index"], positions[1], "{report}");
    }
    let versions = listed_with(&app, 2).await["versions"].clone();
    assert_eq!(versions[1]["verification"]["differing"], 1, "{versions}");
    assert_eq!(
        versions[1]["verification"]["through"], whole["through"],
        "{versions}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_activation_is_cancelled_through_the_log_and_blocks_nothing_after() {
    let app = app().await;
    let hash = deployed(&app, EARLIER_RELEASE).await;
    let post = |path: String, body: serde_json::Value| {
        let app = &app;
        async move { app.post(&path, Some(ADMIN), &body).await }
    };
    let activate = format!("/v1/admin/versions/{hash}/activate");
    let cancel = format!("/v1/admin/versions/{hash}/cancel");
    let far = json!({"at_index": 1_000_000_000u64, "force_reason": "a typo"});
    let scheduled = post(activate.clone(), far).await;
    assert_eq!(scheduled.status, 200, "{}", scheduled.text);
    assert_eq!(
        listed_with(&app, 2).await["versions"][1]["state"],
        "scheduled"
    );
    let now = json!({"force_reason": "meant now"});
    let blocked = post(activate.clone(), now.clone()).await;
    assert_eq!(blocked.status, 409, "{}", blocked.text);
    assert_eq!(blocked.code(), "activation_pending");

    let cancelled = post(cancel.clone(), json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json["cancelled_from"], 1_000_000_000u64);
    assert!(cancelled.header("wallet-position").is_some());
    let again = post(cancel.clone(), json!({})).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.code(), "not_scheduled");
    let unknown = post(
        format!("/v1/admin/versions/{}/cancel", "0".repeat(64)),
        json!({}),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let versions = listed_with(&app, 2).await["versions"].clone();
    assert_eq!(versions[0]["state"], "active", "{versions}");
    assert_eq!(versions[1]["state"], "deployed", "{versions}");

    let activated = post(activate, now).await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    assert_eq!(listed_with(&app, 2).await["versions"][1]["state"], "active");
}

/// This build's rules storing accounts in a compact layout, with the
/// migration that rewrites the accounts earlier versions stored.
const COMPACT_RELEASE: &[u8] = include_bytes!(
    "../../../../guest-statemachine/releases/statemachine-2.5.0+compact-accounts.wasm"
);

/// Layout 2's first byte (`guest-statemachine/src/layout.rs`).
const LAYOUT_2: u8 = 0xA2;

#[tokio::test(flavor = "multi_thread")]
async fn a_version_that_changes_the_state_layout_migrates_it_where_it_starts_running() {
    let app = app().await;
    let deposit = json!({"account_id": "alice", "amount": "20000.00", "currency": "USD",
                         "transaction_id": txid(1)});
    let deposited = app.post("/v1/wallet/deposit", Some(ADMIN), &deposit).await;
    assert_eq!(deposited.status, 200, "{}", deposited.text);
    app.probe.snapshot().await;
    alice_pays_bob_6000_twice(&app).await;
    let stored = |account: &str| app.probe.stored(format!("a{account}").as_bytes());
    assert_ne!(
        stored("alice").and_then(|v| v.first().copied()),
        Some(LAYOUT_2)
    );

    // Compared in the candidate's layout, history is identical, from
    // genesis and from the snapshot's migrated state.
    let compact = deployed(&app, COMPACT_RELEASE).await;
    for from in ["genesis", "snapshot"] {
        let (last, _) = verify_from(&app, &compact, from).await;
        let report = &last["report"];
        assert!(report["batches"].as_u64() > Some(0), "{last}");
        assert_eq!(report["identical"], report["batches"], "{last}");
        assert_eq!(report["own_state_writes"], 0, "{last}");
    }

    // Scheduled two entries ahead: the entry between still runs the rules
    // before, on layout 1, and the migration runs only at the switch.
    let status = app.get("/v1/cluster/status", Some(ADMIN)).await;
    let applied = status.json["partitions"][0]["applied_index"]
        .as_u64()
        .expect("an index");
    let activated = app
        .post(
            &format!("/v1/admin/versions/{compact}/activate"),
            Some(ADMIN),
            &json!({"at_index": applied + 3}),
        )
        .await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    for n in 4..7 {
        let paid = transfer("alice", "bob", "1.00", "USD", &txid(n));
        let paid = app
            .post("/v1/wallet/balance_transfer", Some(ADMIN), &paid)
            .await;
        assert_eq!(paid.status, 200, "{}", paid.text);
    }
    let status = app.get("/v1/cluster/status", Some(ADMIN)).await;
    assert_eq!(
        status.json["partitions"][0]["active_version"],
        compact.as_str()
    );
    for account in ["alice", "bob", "carol"] {
        let layout = stored(account).and_then(|v| v.first().copied());
        assert_eq!(layout, Some(LAYOUT_2), "{account}");
    }
    assert_eq!(app.balance("bob", "USD").await, 1_200_300);
    assert_eq!(
        app.balance("alice", "USD").await,
        10_000 + 2_000_000 - 1_200_300
    );

    // Over a history that now holds the switch (its migration runs on the
    // recorded state there), the active version is identical to itself.
    let (last, _) = verify(&app, &compact).await;
    assert_eq!(
        last["report"]["identical"], last["report"]["batches"],
        "{last}"
    );
}

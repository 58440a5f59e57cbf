//! Who may do what. Writes are the rules' decision (every command carries
//! its caller); reads and token management are the edge's.

use super::*;
use serde_json::json;

const TRANSFER: &str = "/v1/wallet/balance_transfer";
const BATCH: &str = "/v1/wallet/balance_transfers";

#[tokio::test(flavor = "multi_thread")]
async fn missing_unknown_and_expired_tokens_are_401_with_a_challenge() {
    let app = app().await;
    let body = transfer("alice", "bob", "1", "USD", &txid(200));
    let expired = app
        .token(RoleName::Admin, None, Some(crate::tokens::now_ms() - 1))
        .await;
    let no_token = app.post(TRANSFER, None, &body).await;
    let bad_token = app.post(TRANSFER, Some("not-a-token"), &body).await;
    let old_token = app.post(TRANSFER, Some(&expired), &body).await;
    let basic = app
        .send(
            app.http
                .get(format!("{}/v1/wallet/accounts/alice", app.base))
                .header("authorization", format!("Basic {ADMIN}")),
            None,
        )
        .await;
    let read = app.get("/v1/wallet/accounts/alice", None).await;
    let status = app.get("/v1/cluster/status", Some("nope")).await;
    for answer in [no_token, bad_token, old_token, basic, read, status] {
        assert_eq!(answer.status, 401, "{}", answer.text);
        assert_eq!(answer.code(), "unauthorized");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    assert!(app.probe.submits().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_moves_money_only_out_of_its_own_accounts() {
    let app = app().await;
    let bob = app.client("bob").await;
    let alice = app.client("alice").await;

    let steal = app
        .post(
            TRANSFER,
            Some(&bob),
            &transfer("alice", "bob", "1", "USD", &txid(210)),
        )
        .await;
    assert_eq!(steal.status, 403, "{}", steal.text);
    assert_eq!(
        steal.json,
        json!({"status": "failed", "transaction_id": txid(210), "reason": "not_owner"})
    );
    let batch = app
        .post(
            BATCH,
            Some(&bob),
            &json!({"transfers": [transfer("bob", "alice", "x", "USD", &txid(211))]}),
        )
        .await;
    assert_eq!(
        batch.status, 400,
        "malformed input is refused first: {}",
        batch.text
    );
    // Inside a batch, a refusal is that item's result, like any other.
    let batch = app
        .post(
            BATCH,
            Some(&bob),
            &json!({"transfers": [
                transfer("carol", "bob", "1", "USD", &txid(215)),
                transfer("alice", "bob", "1", "USD", &txid(216)),
            ]}),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    assert_eq!(batch.json["results"][0]["reason"], "not_owner");
    assert_eq!(batch.json["results"][1]["reason"], "not_owner");

    let own = app
        .post(
            TRANSFER,
            Some(&alice),
            &transfer("alice", "bob", "1", "USD", &txid(213)),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let unknown = app
        .post(
            TRANSFER,
            Some(&alice),
            &transfer("ghost", "bob", "1", "USD", &txid(214)),
        )
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert_eq!(unknown.code(), "account_not_found");
    // The same id again, by another principal with the same body: a
    // conflict, never a replay of someone else's answer.
    let replay = app
        .post(
            TRANSFER,
            Some(ADMIN),
            &transfer("alice", "bob", "1", "USD", &txid(213)),
        )
        .await;
    assert_eq!(replay.status, 409, "{}", replay.text);
    assert_eq!(app.balance("bob", "USD").await, 100);
    assert_eq!(app.balance("alice", "USD").await, 10_000 - 100);

    // The refusal is an event of the transfer.
    let refused = app
        .get(&format!("/v1/wallet/transfers/{}", txid(210)), Some(ADMIN))
        .await;
    assert_eq!(refused.json["status"], "failed", "{}", refused.text);
    assert_eq!(refused.json["reason"], "not_owner");
    assert_eq!(refused.json["events"][0]["type"], "transfer_rejected");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auditor_reads_everything_and_writes_nothing() {
    let app = app().await;
    let auditor = app.token(RoleName::Auditor, None, None).await;
    let cash = |n| json!({"account_id": "bob", "amount": "1", "currency": "USD", "transaction_id": txid(n)});
    for (path, body, code) in [
        (
            TRANSFER,
            transfer("alice", "bob", "1", "USD", &txid(221)),
            "not_allowed",
        ),
        ("/v1/wallet/deposit", cash(220), "not_allowed"),
        ("/v1/wallet/withdraw", cash(223), "not_allowed"),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "eve"}),
            "not_allowed",
        ),
        ("/v1/admin/tokens", json!({"role": "admin"}), "forbidden"),
    ] {
        let answer = app.post(path, Some(&auditor), &body).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.text);
        assert_eq!(answer.code(), code, "{path}");
    }
    let batch = app
        .post(
            BATCH,
            Some(&auditor),
            &json!({"transfers": [transfer("alice", "bob", "1", "USD", &txid(222))]}),
        )
        .await;
    assert_eq!(
        batch.json["results"][0]["reason"], "not_allowed",
        "{}",
        batch.text
    );
    assert_eq!(app.balance("alice", "USD").await, 10_000);
    for path in [
        "/v1/wallet/accounts/alice",
        "/v1/wallet/accounts/bob/balance?currency=USD",
        "/v1/wallet/accounts/alice/history",
        "/v1/cluster/status",
    ] {
        let answer = app.get(path, Some(&auditor)).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_an_admin_deposits_withdraws_opens_accounts_and_manages_tokens() {
    let app = app().await;
    let alice = app.client("alice").await;
    let cash = |n| json!({"account_id": "alice", "amount": "1", "currency": "USD", "transaction_id": txid(n)});
    for (path, body, code) in [
        ("/v1/wallet/deposit", cash(230), "not_allowed"),
        ("/v1/wallet/withdraw", cash(231), "not_allowed"),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "eve", "owner": "alice"}),
            "not_allowed",
        ),
        (
            "/v1/admin/tokens",
            json!({"role": "client", "owner": "bob"}),
            "forbidden",
        ),
    ] {
        let answer = app.post(path, Some(&alice), &body).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.text);
        assert_eq!(answer.code(), code, "{path}");
    }
    for answer in [
        app.get("/v1/admin/tokens", Some(&alice)).await,
        app.delete("/v1/admin/tokens/0011223344556677", Some(&alice))
            .await,
        app.get("/v1/admin/backup", Some(&alice)).await,
        app.get("/v1/admin/versions", Some(&alice)).await,
        app.post_raw(
            "/v1/admin/versions",
            Some(&alice),
            Some("application/wasm"),
            b"\0asm".to_vec(),
        )
        .await,
        app.post(
            &format!("/v1/admin/versions/{}/activate", "0".repeat(64)),
            Some(&alice),
            &json!({"force_reason": "x"}),
        )
        .await,
        app.post(
            &format!("/v1/admin/versions/{}/verify", "0".repeat(64)),
            Some(&alice),
            &json!({}),
        )
        .await,
    ] {
        assert_eq!(answer.status, 403, "{}", answer.text);
    }
    let eve = app.get("/v1/wallet/accounts/eve", Some(ADMIN)).await;
    assert_eq!(eve.status, 404, "no account was opened");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_reads_only_its_own_accounts_and_transfers() {
    let app = app().await;
    let alice = app.client("alice").await;
    for path in [
        "/v1/wallet/accounts/bob",
        "/v1/wallet/accounts/bob/balance?currency=USD",
        "/v1/wallet/accounts/bob/history",
    ] {
        let answer = app.get(path, Some(&alice)).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.text);
    }
    for path in [
        "/v1/wallet/accounts/alice",
        "/v1/wallet/accounts/alice/balance?currency=USD",
        "/v1/wallet/accounts/alice/history",
    ] {
        let answer = app.get(path, Some(&alice)).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    }
    let deposit =
        json!({"account_id": "bob", "amount": "1", "currency": "USD", "transaction_id": txid(240)});
    assert_eq!(
        app.post("/v1/wallet/deposit", Some(ADMIN), &deposit)
            .await
            .status,
        200
    );
    let ours = transfer("alice", "bob", "1", "USD", &txid(241));
    assert_eq!(app.post(TRANSFER, Some(&alice), &ours).await.status, 200);

    let theirs = app
        .get(&format!("/v1/wallet/transfers/{}", txid(240)), Some(&alice))
        .await;
    assert_eq!(theirs.status, 403, "{}", theirs.text);
    let mine = app
        .get(&format!("/v1/wallet/transfers/{}", txid(241)), Some(&alice))
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    let bob = app.client("bob").await;
    let seen_by_bob = app
        .get(&format!("/v1/wallet/transfers/{}", txid(240)), Some(&bob))
        .await;
    assert_eq!(seen_by_bob.status, 200, "{}", seen_by_bob.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_created_listed_without_secrets_expired_and_revoked() {
    let app = app().await;
    let answer = app
        .post(
            "/v1/admin/tokens",
            Some(ADMIN),
            &json!({"role": "client", "owner": "alice", "expires_in_seconds": 3600}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.json["role"], "client");
    assert_eq!(answer.json["owner"], "alice");
    assert!(answer.json["expires_at"].is_string());
    let token = answer.json["token"].as_str().unwrap_or_default().to_owned();
    let id = answer.json["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(token.len(), 64);
    let read = app.get("/v1/wallet/accounts/alice", Some(&token)).await;
    assert_eq!(read.status, 200, "{}", read.text);

    let list = app.get("/v1/admin/tokens", Some(ADMIN)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json["tokens"].as_array().map(Vec::len), Some(2));
    assert!(!list.text.contains(&token) && !list.text.contains("sha256"));
    assert!(list.text.contains(&id));

    let revoked = app
        .delete(&format!("/v1/admin/tokens/{id}"), Some(ADMIN))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.json["id"], id);
    let read = app.get("/v1/wallet/accounts/alice", Some(&token)).await;
    assert_eq!(read.status, 401, "a revoked token stops working");
    let again = app
        .delete(&format!("/v1/admin/tokens/{id}"), Some(ADMIN))
        .await;
    assert_eq!(again.status, 404, "{}", again.text);
    assert_eq!(again.code(), "token_not_found");

    let list = app.get("/v1/admin/tokens", Some(ADMIN)).await;
    let admin_id = list.json["tokens"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let last = app
        .delete(&format!("/v1/admin/tokens/{admin_id}"), Some(ADMIN))
        .await;
    assert_eq!(last.status, 409, "{}", last.text);
    assert_eq!(last.code(), "last_admin_token");

    assert_eq!(app.probe.authenticate(&token), None, "revoked");
    assert!(app.probe.authenticate(ADMIN).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_metrics_and_openapi_need_no_token() {
    let app = app().await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let answer = app.get(path, None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    }
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.json, json!({"status": "ready"}));
}

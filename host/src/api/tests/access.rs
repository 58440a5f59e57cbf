//! Who may do what.

use super::*;
use serde_json::json;

const TRANSFER: &str = "/v1/wallet/balance_transfer";

#[tokio::test]
async fn missing_or_unknown_tokens_are_401_with_a_challenge() {
    let app = app().await;
    let body = transfer("alice", "bob", "1", "USD", &txid(200));
    let no_token = app.post(TRANSFER, None, &body).await;
    let bad_token = app.post(TRANSFER, Some("not-a-token"), &body).await;
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
    for answer in [no_token, bad_token, basic, read, status] {
        assert_eq!(answer.status, 401, "{}", answer.text);
        assert_eq!(answer.code(), "unauthorized");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    assert!(app.fake.submits().is_empty());
}

#[tokio::test]
async fn a_client_moves_money_only_out_of_its_own_accounts() {
    let app = app().await;
    let bob = app.client("bob");
    let alice = app.client("alice");

    let steal = app
        .post(
            TRANSFER,
            Some(&bob),
            &transfer("alice", "bob", "1", "USD", &txid(210)),
        )
        .await;
    assert_eq!(steal.status, 403, "{}", steal.text);
    assert_eq!(steal.code(), "forbidden");
    let batch = app
        .post(
            "/v1/wallet/balance_transfers",
            Some(&bob),
            &json!({"transfers": [
                transfer("bob", "alice", "0", "USD", &txid(211)),
            ]}),
        )
        .await;
    assert_eq!(batch.status, 400, "validation comes first: {}", batch.text);
    let batch = app
        .post(
            "/v1/wallet/balance_transfers",
            Some(&bob),
            &json!({"transfers": [
                transfer("bob", "alice", "1", "USD", &txid(211)),
                transfer("alice", "bob", "1", "USD", &txid(212)),
            ]}),
        )
        .await;
    assert_eq!(batch.status, 403, "{}", batch.text);
    // Every source is checked, wherever it is in the batch.
    let batch = app
        .post(
            "/v1/wallet/balance_transfers",
            Some(&bob),
            &json!({"transfers": [
                transfer("bob", "alice", "1", "USD", &txid(215)),
                transfer("bob", "alice", "1", "USD", &txid(216)),
                transfer("carol", "bob", "1", "USD", &txid(217)),
            ]}),
        )
        .await;
    assert_eq!(batch.status, 403, "{}", batch.text);
    assert!(app.fake.submits().is_empty());

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
    assert_eq!(app.fake.balance("bob", "USD"), 100);
}

#[tokio::test]
async fn an_auditor_reads_everything_and_writes_nothing() {
    let app = app().await;
    let auditor = app.token(Role::Auditor);
    let cash =
        json!({"account_id": "bob", "amount": "1", "currency": "USD", "transaction_id": txid(220)});
    for (path, body) in [
        (TRANSFER, transfer("alice", "bob", "1", "USD", &txid(221))),
        ("/v1/wallet/balance_transfers", json!({"transfers": []})),
        ("/v1/wallet/deposit", cash.clone()),
        ("/v1/wallet/withdraw", cash),
        ("/v1/wallet/accounts", json!({"account_id": "eve"})),
        ("/v1/admin/tokens", json!({"role": "admin"})),
    ] {
        let answer = app.post(path, Some(&auditor), &body).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.text);
        assert_eq!(answer.code(), "forbidden");
    }
    assert!(app.fake.submits().is_empty());
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

#[tokio::test]
async fn only_an_admin_deposits_withdraws_opens_accounts_and_creates_tokens() {
    let app = app().await;
    let alice = app.client("alice");
    let cash = json!({"account_id": "alice", "amount": "1", "currency": "USD", "transaction_id": txid(230)});
    for (path, body) in [
        ("/v1/wallet/deposit", cash.clone()),
        ("/v1/wallet/withdraw", cash),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "eve", "owner": "alice"}),
        ),
        (
            "/v1/admin/tokens",
            json!({"role": "client", "owner": "bob"}),
        ),
    ] {
        let answer = app.post(path, Some(&alice), &body).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.text);
    }
    assert!(app.fake.submits().is_empty());
}

#[tokio::test]
async fn a_client_reads_only_its_own_accounts_and_transfers() {
    let app = app().await;
    let alice = app.client("alice");
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
    let bob = app.client("bob");
    let seen_by_bob = app
        .get(&format!("/v1/wallet/transfers/{}", txid(240)), Some(&bob))
        .await;
    assert_eq!(seen_by_bob.status, 200, "{}", seen_by_bob.text);
}

#[tokio::test]
async fn an_admin_creates_tokens_that_work_and_persist() {
    let app = app().await;
    let answer = app
        .post(
            "/v1/admin/tokens",
            Some(ADMIN),
            &json!({"role": "client", "owner": "alice"}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.json["role"], "client");
    let token = answer.json["token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(token.len(), 64);
    let read = app.get("/v1/wallet/accounts/alice", Some(&token)).await;
    assert_eq!(read.status, 200, "{}", read.text);

    let (reopened, printed) = Auth::open_with(app.dir.path(), None).expect("reopen");
    assert_eq!(printed, None);
    assert_eq!(
        reopened.authenticate(&token),
        Some(Role::Client {
            owner: "alice".into()
        })
    );
    assert_eq!(reopened.authenticate(ADMIN), Some(Role::Admin));
    let text =
        std::fs::read_to_string(app.dir.path().join(super::super::TOKENS_FILE)).unwrap_or_default();
    assert!(!text.contains(&token) && !text.contains(ADMIN));
}

#[tokio::test]
async fn health_metrics_and_openapi_need_no_token() {
    let app = app().await;
    for path in ["/healthz", "/metrics", "/openapi.json"] {
        let answer = app.get(path, None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    }
}

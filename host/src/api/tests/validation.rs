//! Every refused input is a 400 JSON error and submits nothing.

use super::*;
use serde_json::json;

const TRANSFER: &str = "/v1/wallet/balance_transfer";

fn with(field: &str, value: Value) -> Value {
    let mut body = transfer("alice", "bob", "1.00", "USD", &txid(100));
    body[field] = value;
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_transfers_are_400_and_submit_nothing() {
    let app = app().await;
    let too_long = "x".repeat(65);
    let cases = [
        (with("amount", json!("-1")), "invalid_amount"),
        (with("amount", json!("0.00")), "invalid_amount"),
        (with("amount", json!("1.001")), "amount_too_precise"),
        (
            with("amount", json!("999999999999999999")),
            "amount_too_large",
        ),
        (with("amount", json!("1.00001")), "amount_too_precise"),
        (
            with("amount", json!("99999999999999999999")),
            "amount_too_large",
        ),
        (with("amount", json!("1e3")), "invalid_amount"),
        (with("amount", json!("abc")), "invalid_amount"),
        (with("amount", json!("")), "invalid_amount"),
        (with("amount", json!(12.34)), "invalid_body"),
        (with("currency", json!("ABC")), "unknown_currency"),
        (with("currency", json!("usd")), "unknown_currency"),
        (with("currency", json!("XAU")), "unknown_currency"),
        (
            with("transaction_id", json!("nope")),
            "invalid_transaction_id",
        ),
        (with("transaction_id", json!(7)), "invalid_body"),
        (with("from_account", json!("bad id")), "invalid_account_id"),
        (with("to_account", json!(too_long)), "invalid_account_id"),
        (with("to_account", json!("")), "invalid_account_id"),
        (with("memo", json!("hi")), "invalid_body"),
        (json!({"from_account": "alice"}), "invalid_body"),
        (json!([]), "invalid_body"),
    ];
    for (body, code) in cases {
        let answer = app.post(TRANSFER, Some(ADMIN), &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(answer.code(), code, "{body}: {}", answer.text);
        assert!(answer.json["message"].is_string());
    }
    assert_eq!(app.probe.submits(), Vec::<usize>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_untyped_bodies_are_400_and_oversized_ones_413() {
    let app = app().await;
    let json_type = Some("application/json");
    let cases = [
        (json_type, b"{".to_vec(), "malformed_json"),
        (json_type, b"".to_vec(), "malformed_json"),
        (None, b"{}".to_vec(), "invalid_content_type"),
        (Some("text/plain"), b"{}".to_vec(), "invalid_content_type"),
    ];
    for (content_type, body, code) in cases {
        let answer = app
            .post_raw(TRANSFER, Some(ADMIN), content_type, body)
            .await;
        assert_eq!(answer.status, 400, "{code}: {}", answer.text);
        assert_eq!(answer.code(), code, "{}", answer.text);
    }
    let oversized = vec![b' '; super::super::MAX_BODY_BYTES + 1];
    let answer = app
        .post_raw(TRANSFER, Some(ADMIN), json_type, oversized)
        .await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert_eq!(answer.code(), "body_too_large");
    assert!(app.probe.submits().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_batches_are_400_and_submit_nothing() {
    let app = app().await;
    let many: Vec<Value> = (0..=super::super::MAX_BATCH as u128)
        .map(|n| transfer("alice", "bob", "0.01", "USD", &txid(1_000 + n)))
        .collect();
    let one_bad = vec![
        transfer("alice", "bob", "1", "USD", &txid(101)),
        transfer("alice", "bob", "1e2", "USD", &txid(102)),
    ];
    let cases = [
        (json!({"transfers": []}), "batch_empty"),
        (json!({"transfers": many}), "batch_too_large"),
        (json!({"transfers": one_bad}), "invalid_amount"),
        (json!({}), "invalid_body"),
        (json!({"transfers": [], "extra": 1}), "invalid_body"),
    ];
    for (body, code) in cases {
        let answer = app
            .post("/v1/wallet/balance_transfers", Some(ADMIN), &body)
            .await;
        assert_eq!(answer.status, 400, "{code}: {}", answer.text);
        assert_eq!(answer.code(), code, "{}", answer.text);
    }
    let answer = app
        .post(
            "/v1/wallet/balance_transfers",
            Some(ADMIN),
            &json!({"transfers": [
                transfer("alice", "bob", "1", "USD", &txid(101)),
                transfer("alice", "bob", "1e2", "USD", &txid(102)),
            ]}),
        )
        .await;
    assert!(
        answer.json["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("transfers[1]")),
        "{}",
        answer.text
    );
    assert!(app.probe.submits().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_batch_is_accepted() {
    let app = app().await;
    let transfers: Vec<Value> = (0..super::super::MAX_BATCH as u128)
        .map(|n| transfer("alice", "bob", "0.01", "USD", &txid(20_000 + n)))
        .collect();
    let answer = app
        .post(
            "/v1/wallet/balance_transfers",
            Some(ADMIN),
            &json!({ "transfers": transfers }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.probe.submits(), vec![super::super::MAX_BATCH]);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_cash_accounts_and_tokens_are_400() {
    let app = app().await;
    let cases = [
        (
            "/v1/wallet/withdraw",
            json!({"account_id": "bob", "amount": "1.5.1", "currency": "JPY", "transaction_id": txid(111)}),
            "invalid_amount",
        ),
        (
            "/v1/wallet/deposit",
            json!({"account_id": "bob", "amount": "1", "currency": "USD"}),
            "invalid_body",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "a b"}),
            "invalid_account_id",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "kind": "credit"}),
            "invalid_credit_limit",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "kind": "credit", "credit_limit_minor": -1}),
            "invalid_credit_limit",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "credit_limit_minor": 5}),
            "invalid_credit_limit",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "kind": "gold"}),
            "invalid_body",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "owner": ""}),
            "invalid_owner",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "owner": "Alice Smith"}),
            "invalid_owner",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "owner": null}),
            "invalid_body",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "kind": "credit", "credit_limit_minor": null}),
            "invalid_body",
        ),
        (
            "/v1/wallet/accounts",
            json!({"account_id": "dave", "balance": "1"}),
            "invalid_body",
        ),
        (
            "/v1/admin/tokens",
            json!({"role": "client"}),
            "invalid_role",
        ),
        (
            "/v1/admin/tokens",
            json!({"role": "client", "owner": "Alice Smith"}),
            "invalid_owner",
        ),
        (
            "/v1/admin/tokens",
            json!({"role": "auditor", "expires_in_seconds": 0}),
            "invalid_expiry",
        ),
        ("/v1/admin/tokens", json!({"role": "root"}), "invalid_body"),
        (
            "/v1/admin/tokens",
            json!({"role": "system"}),
            "invalid_body",
        ),
        (
            "/v1/admin/tokens",
            json!({"role": "admin", "owner": null}),
            "invalid_body",
        ),
    ];
    for (path, body, code) in cases {
        let answer = app.post(path, Some(ADMIN), &body).await;
        assert_eq!(answer.status, 400, "{path} {body}: {}", answer.text);
        assert_eq!(answer.code(), code, "{path} {body}: {}", answer.text);
    }
    assert!(app.probe.submits().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_queries_and_paths_are_400() {
    let app = app().await;
    for (path, code) in [
        ("/v1/wallet/accounts/alice/history?limit=0", "invalid_limit"),
        (
            "/v1/wallet/accounts/alice/history?limit=1001",
            "invalid_limit",
        ),
        (
            "/v1/wallet/accounts/alice/history?limit=abc",
            "invalid_query",
        ),
        (
            "/v1/wallet/accounts/alice/history?after=-1",
            "invalid_query",
        ),
        ("/v1/wallet/accounts/alice/history?page=2", "invalid_query"),
        (
            "/v1/wallet/accounts/alice/balance?currency=USD&when=2024-01-01T00:00:00Z",
            "invalid_query",
        ),
        (
            "/v1/wallet/accounts/alice/balance?currency=USD&at=2024-01-01",
            "invalid_time",
        ),
        ("/v1/wallet/accounts/alice/balance", "invalid_query"),
        (
            "/v1/wallet/accounts/alice/balance?currency=XYZ",
            "unknown_currency",
        ),
        ("/v1/wallet/accounts/a%20b", "invalid_account_id"),
        ("/v1/wallet/transfers/not-a-uuid", "invalid_transaction_id"),
    ] {
        let answer = app.get(path, Some(ADMIN)).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text);
        assert_eq!(answer.code(), code, "{path}: {}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_schema_cannot_say_is_a_422() {
    let app = app().await;
    let same = transfer("alice", "alice", "1.00", "USD", &txid(120));
    let answer = app.post(TRANSFER, Some(ADMIN), &same).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.code(), "same_account");
    let into_the_bank =
        json!({"account_id": BANK, "amount": "1", "currency": "USD", "transaction_id": txid(121)});
    let answer = app
        .post("/v1/wallet/deposit", Some(ADMIN), &into_the_bank)
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.code(), "same_account");
    assert_eq!(app.probe.submits(), vec![1, 1], "each reached the rules");

    // More minor units than an amount may have, within the digits its
    // currency allows: the amount cannot be carried to the rules at all.
    let body = transfer("alice", "bob", "92233720368547758.08", "USD", &txid(123));
    let answer = app.post(TRANSFER, Some(ADMIN), &body).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(
        answer.json,
        json!({"status": "failed", "transaction_id": txid(123), "reason": "amount_too_large"})
    );
    let batch = app
        .post(
            "/v1/wallet/balance_transfers",
            Some(ADMIN),
            &json!({"transfers": [
                transfer("alice", "bob", "92233720368547758.08", "USD", &txid(124)),
                transfer("alice", "bob", "1.00", "USD", &txid(125)),
            ]}),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    assert_eq!(batch.json["results"][0]["reason"], "amount_too_large");
    assert_eq!(batch.json["results"][1]["status"], "success");
    assert_eq!(
        app.probe.submits(),
        vec![1, 1, 1],
        "only the good item was submitted"
    );
    assert_eq!(app.balance("alice", "USD").await, 10_000 - 100);
}

use super::*;
use crate::service::SubmitError;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_moves_money_once_and_a_retry_returns_the_first_answer() {
    let app = app().await;
    let body = transfer("alice", "bob", "12.34", "USD", &txid(1));
    let first = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        first.json,
        json!({"status": "success", "transaction_id": txid(1)})
    );
    let retry = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
        .await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json, first.json);
    assert_eq!(app.balance("alice", "USD").await, 10_000 - 1234);
    assert_eq!(app.balance("bob", "USD").await, 1234);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_transaction_id_with_another_body_is_409() {
    let app = app().await;
    let ok = app
        .post(
            "/v1/wallet/balance_transfer",
            Some(ADMIN),
            &transfer("alice", "bob", "1.00", "USD", &txid(2)),
        )
        .await;
    assert_eq!(ok.status, 200);
    let conflict = app
        .post(
            "/v1/wallet/balance_transfer",
            Some(ADMIN),
            &transfer("alice", "bob", "2.00", "USD", &txid(2)),
        )
        .await;
    assert_eq!(conflict.status, 409, "{}", conflict.text);
    assert_eq!(
        conflict.json,
        json!({"status": "failed", "transaction_id": txid(2), "reason": "idempotency_conflict"})
    );
    assert_eq!(app.balance("bob", "USD").await, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn business_rejections_are_422_with_the_reason_code() {
    let app = app().await;
    for (body, reason) in [
        (
            transfer("alice", "bob", "100.01", "USD", &txid(3)),
            "insufficient_funds",
        ),
        (
            transfer("alice", "nobody", "1", "USD", &txid(4)),
            "account_not_found",
        ),
        (
            transfer("carol", "bob", "5.01", "USD", &txid(5)),
            "insufficient_funds",
        ),
    ] {
        let answer = app
            .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
            .await;
        assert_eq!(answer.status, 422, "{}", answer.text);
        assert_eq!(answer.json["status"], "failed");
        assert_eq!(answer.json["reason"], reason);
        assert_eq!(answer.json["transaction_id"], body["transaction_id"]);
    }
    // The credit account may go 5.00 below zero.
    let ok = app
        .post(
            "/v1/wallet/balance_transfer",
            Some(ADMIN),
            &transfer("carol", "bob", "5.00", "USD", &txid(6)),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(app.balance("carol", "USD").await, -500);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_one_submission_with_results_in_order() {
    let app = app().await;
    let transfers = vec![
        transfer("alice", "bob", "60.00", "USD", &txid(10)),
        transfer("alice", "bob", "60.00", "USD", &txid(11)),
        transfer("alice", "ghost", "1.00", "USD", &txid(12)),
        transfer("bob", "alice", "10.00", "USD", &txid(13)),
        transfer("alice", "bob", "0.01", "USD", &txid(10)),
    ];
    let answer = app
        .post(
            "/v1/wallet/balance_transfers",
            Some(ADMIN),
            &json!({ "transfers": transfers }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json,
        json!({"results": [
            {"status": "success", "transaction_id": txid(10)},
            {"status": "failed", "transaction_id": txid(11), "reason": "insufficient_funds"},
            {"status": "failed", "transaction_id": txid(12), "reason": "account_not_found"},
            {"status": "success", "transaction_id": txid(13)},
            {"status": "failed", "transaction_id": txid(10), "reason": "idempotency_conflict"},
        ]})
    );
    assert_eq!(
        app.probe.submits(),
        vec![5],
        "one submit with every command"
    );
    assert_eq!(app.balance("alice", "USD").await, 10_000 - 6_000 + 1_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn deposits_and_withdrawals_go_through_the_system_account() {
    let app = app().await;
    let cash = |account: &str, amount: &str, currency: &str, n: u128| json!({"account_id": account, "amount": amount, "currency": currency, "transaction_id": txid(n)});
    let answer = app
        .post(
            "/v1/wallet/deposit",
            Some(ADMIN),
            &cash("bob", "5", "JPY", 20),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.balance("bob", "JPY").await, 5);
    assert_eq!(app.balance(BANK, "JPY").await, -5);
    let answer = app
        .post(
            "/v1/wallet/deposit",
            Some(ADMIN),
            &cash("bob", "1.005", "BHD", 21),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.balance("bob", "BHD").await, 1005);

    let answer = app
        .post(
            "/v1/wallet/withdraw",
            Some(ADMIN),
            &cash("bob", "3", "JPY", 22),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.balance("bob", "JPY").await, 2);
    let answer = app
        .post(
            "/v1/wallet/withdraw",
            Some(ADMIN),
            &cash("bob", "3", "JPY", 23),
        )
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.code(), "insufficient_funds");
    assert_eq!(app.balance(BANK, "JPY").await, -2);
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_errors_map_to_429_503_500() {
    let app = app().await;
    let cases = [
        (
            SubmitError::Overloaded {
                queued: 10,
                limit: 10,
            },
            429,
            "overloaded",
            true,
        ),
        (
            SubmitError::NotLeader { leader: None },
            503,
            "not_leader",
            true,
        ),
        (SubmitError::ShuttingDown, 503, "shutting_down", true),
        (
            SubmitError::InsufficientStorage {
                floor_bytes: 1 << 30,
            },
            507,
            "insufficient_storage",
            true,
        ),
        (
            SubmitError::Stopped("disk failed".into()),
            503,
            "stopped",
            true,
        ),
        (SubmitError::Internal("boom".into()), 500, "internal", false),
    ];
    for (error, status, code, retry) in cases {
        app.probe.fail_submits_with(Some(error));
        let single = app
            .post(
                "/v1/wallet/balance_transfer",
                Some(ADMIN),
                &transfer("alice", "bob", "1", "USD", &txid(30)),
            )
            .await;
        let batch = app
            .post(
                "/v1/wallet/balance_transfers",
                Some(ADMIN),
                &json!({"transfers": [transfer("alice", "bob", "1", "USD", &txid(31))]}),
            )
            .await;
        for answer in [single, batch] {
            assert_eq!(answer.status, status, "{}", answer.text);
            assert_eq!(answer.code(), code);
            let expected = retry.then_some("1");
            assert_eq!(answer.header("retry-after"), expected, "{code}");
            assert!(!answer.text.contains("boom"), "internals stay in the log");
        }
    }
    app.probe.fail_submits_with(None);
    assert_eq!(app.balance("bob", "USD").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_batch_is_500() {
    let app = app().await;
    app.probe.fail_batches(true);
    let answer = app
        .post(
            "/v1/wallet/balance_transfer",
            Some(ADMIN),
            &transfer("alice", "bob", "1", "USD", &txid(40)),
        )
        .await;
    assert_eq!(answer.status, 500, "{}", answer.text);
    assert_eq!(answer.code(), "internal");
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_answer_with_the_position_they_were_applied_at() {
    let app = app().await;
    let mut last = 0;
    for n in 0..3 {
        let answer = app
            .post(
                "/v1/wallet/balance_transfer",
                Some(ADMIN),
                &transfer("alice", "bob", "1", "USD", &txid(50 + n)),
            )
            .await;
        let position = answer.header("wallet-position").expect("a position");
        let (partition, index) = position.split_once(':').expect("partition:index");
        assert_eq!(partition, "0");
        let index: u64 = index.parse().expect("an index");
        assert!(index > last, "positions move on: {index} after {last}");
        last = index;
    }
}

//! Accounts, balances, history, transfers and status as JSON.

use super::*;
use serde_json::json;

async fn deposit(app: &App, account: &str, amount: &str, currency: &str, id: u128) {
    let body = json!({"account_id": account, "amount": amount, "currency": currency, "transaction_id": txid(id)});
    let answer = app.post("/v1/wallet/deposit", Some(ADMIN), &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_show_balances_in_their_currency_digits() {
    let app = app().await;
    deposit(&app, "bob", "5", "JPY", 1).await;
    deposit(&app, "bob", "1.005", "BHD", 2).await;
    deposit(&app, "bob", "12.34", "USD", 3).await;
    let answer = app.get("/v1/wallet/accounts/bob", Some(ADMIN)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json,
        json!({
            "account_id": "bob", "owner": "bob", "kind": "standard",
            "balances": {
                "BHD": {"available": "1.005", "reserved": "0.000"},
                "JPY": {"available": "5", "reserved": "0"},
                "USD": {"available": "12.34", "reserved": "0.00"},
            }
        })
    );
    let carol = app.get("/v1/wallet/accounts/carol", Some(ADMIN)).await;
    assert_eq!(carol.json["kind"], "credit");
    assert_eq!(carol.json["credit_limit_minor"], 500);
    let missing = app.get("/v1/wallet/accounts/ghost", Some(ADMIN)).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "account_not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balance_names_its_currency_and_time() {
    let app = app().await;
    let answer = app
        .get(
            "/v1/wallet/accounts/alice/balance?currency=USD",
            Some(ADMIN),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["account_id"], "alice");
    assert_eq!(answer.json["currency"], "USD");
    assert_eq!(answer.json["available"], "100.00");
    assert_eq!(answer.json["reserved"], "0.00");
    assert!(
        answer
            .header("wallet-position")
            .is_some_and(|p| p.starts_with("0:"))
    );
    let as_of = answer.json["as_of"].as_str().unwrap_or_default();
    assert!(as_of.len() == 24 && as_of.ends_with('Z'), "{as_of}");
    let none = app
        .get(
            "/v1/wallet/accounts/alice/balance?currency=JPY",
            Some(ADMIN),
        )
        .await;
    assert_eq!(none.json["available"], "0");
    let missing = app
        .get(
            "/v1/wallet/accounts/ghost/balance?currency=USD",
            Some(ADMIN),
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balance_as_of_a_time_is_the_one_then_and_a_bad_time_is_refused() {
    let app = app().await;
    let path = |at: &str| format!("/v1/wallet/accounts/alice/balance?currency=USD&at={at}");
    let before = app.get(&path("2000-01-01T00:00:00Z"), Some(ADMIN)).await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert_eq!(before.json["available"], "0.00");
    assert_eq!(before.json["as_of"], "2000-01-01T00:00:00.000Z");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let then = super::super::views::now_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let paid = transfer("alice", "bob", "1.50", "USD", &txid(400));
    let paid = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &paid)
        .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let position = paid
        .header("wallet-position")
        .expect("a position")
        .to_owned();
    let read = |at: String| {
        let app = &app;
        let position = position.clone();
        async move {
            let request = app
                .http
                .get(format!("{}{}", app.base, path(&at)))
                .header("wallet-position", position)
                .bearer_auth(ADMIN);
            let answer = request.send().await.expect("an answer");
            assert_eq!(answer.status(), 200);
            let body: serde_json::Value = answer.json().await.expect("JSON");
            body["available"].as_str().expect("an amount").to_owned()
        }
    };
    assert_eq!(read(then).await, "100.00");
    assert_eq!(read(super::super::views::now_rfc3339()).await, "98.50");
    // The future reads as now, and before 1970 as 1970.
    assert_eq!(read("2999-01-01T00:00:00Z".into()).await, "98.50");
    let ancient = app.get(&path("0233-05-17T20:53:48.0Z"), Some(ADMIN)).await;
    assert_eq!(ancient.status, 200, "{}", ancient.text);
    assert_eq!(ancient.json["available"], "0.00");
    assert_eq!(ancient.json["as_of"], "1970-01-01T00:00:00.000Z");
    let refused = app.get(&path("yesterday"), Some(ADMIN)).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.code(), "invalid_time");
    assert!(
        refused.text.contains("not an RFC 3339 time"),
        "{}",
        refused.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_through_events() {
    let app = app().await;
    for n in 0..3 {
        let body = transfer("alice", "bob", "1.50", "USD", &txid(300 + n));
        let answer = app
            .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
            .await;
        assert_eq!(answer.status, 200);
    }
    let page = app
        .get("/v1/wallet/accounts/bob/history?limit=2", Some(ADMIN))
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json["account_id"], "bob");
    assert_eq!(page.json["next"], 2);
    let events = page.json["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "account_opened");
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[1]["type"], "credited");
    assert_eq!(events[1]["amount"], "1.50");
    assert_eq!(events[1]["currency"], "USD");
    assert_eq!(events[1]["account"], "bob");
    assert_eq!(events[1]["transaction_id"], txid(300));
    assert_eq!(events[1]["seq"], 2);
    assert!(
        events[0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let rest = app
        .get(
            "/v1/wallet/accounts/bob/history?limit=2&after=2",
            Some(ADMIN),
        )
        .await;
    assert_eq!(rest.json["events"][0]["transaction_id"], txid(301));
    assert_eq!(rest.json["events"][1]["transaction_id"], txid(302));
    assert_eq!(rest.json["events"][1]["seq"], 4);
    assert_eq!(rest.json["next"], Value::Null);
    let default = app
        .get("/v1/wallet/accounts/bob/history", Some(ADMIN))
        .await;
    assert_eq!(default.json["events"].as_array().map(Vec::len), Some(4));
    let missing = app
        .get("/v1/wallet/accounts/ghost/history", Some(ADMIN))
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_show_status_reason_and_events() {
    let app = app().await;
    let ok = transfer("alice", "bob", "2.00", "USD", &txid(310));
    let refused = transfer("alice", "bob", "200.00", "USD", &txid(311));
    app.post("/v1/wallet/balance_transfer", Some(ADMIN), &ok)
        .await;
    app.post("/v1/wallet/balance_transfer", Some(ADMIN), &refused)
        .await;

    let answer = app
        .get(&format!("/v1/wallet/transfers/{}", txid(310)), Some(ADMIN))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["transaction_id"], txid(310));
    assert_eq!(answer.json["status"], "success");
    assert_eq!(answer.json.get("reason"), None);
    assert_eq!(answer.json["events"][0]["type"], "debited");
    assert_eq!(answer.json["events"][0]["amount"], "2.00");
    assert_eq!(answer.json["events"][1]["type"], "credited");

    let answer = app
        .get(&format!("/v1/wallet/transfers/{}", txid(311)), Some(ADMIN))
        .await;
    assert_eq!(answer.json["status"], "failed");
    assert_eq!(answer.json["reason"], "insufficient_funds");
    assert_eq!(answer.json["events"][0]["type"], "transfer_rejected");

    let missing = app
        .get(&format!("/v1/wallet/transfers/{}", txid(399)), Some(ADMIN))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "transfer_not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_are_created_once() {
    let app = app().await;
    let body = json!({"account_id": "dave", "owner": "dave", "kind": "credit", "credit_limit_minor": 1000});
    let created = app.post("/v1/wallet/accounts", Some(ADMIN), &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.json,
        json!({"account_id": "dave", "owner": "dave", "kind": "credit", "credit_limit_minor": 1000, "balances": {}})
    );
    assert_eq!(created.header("location"), Some("/v1/wallet/accounts/dave"));
    let again = app.post("/v1/wallet/accounts", Some(ADMIN), &body).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.code(), "account_exists");
    let plain = app
        .post(
            "/v1/wallet/accounts",
            Some(ADMIN),
            &json!({"account_id": "erin"}),
        )
        .await;
    assert_eq!(plain.status, 201, "{}", plain.text);
    assert_eq!(plain.json["kind"], "standard");
    assert_eq!(plain.json["owner"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_open_in_a_batch_each_with_its_own_result() {
    let app = app().await;
    const OPENINGS: &str = "/v1/wallet/account_openings";
    let body = json!({"accounts": [
        {"account_id": "frank", "owner": "frank"},
        {"account_id": "alice"},
        {"account_id": "gina", "kind": "credit", "credit_limit_minor": 5},
    ]});
    let opened = app.post(OPENINGS, Some(ADMIN), &body).await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    assert_eq!(
        opened.json["results"],
        json!([
            {"account_id": "frank", "status": "opened"},
            {"account_id": "alice", "status": "failed", "reason": "account_exists"},
            {"account_id": "gina", "status": "opened"},
        ])
    );
    assert!(opened.header("wallet-position").is_some());
    let frank = app.get("/v1/wallet/accounts/frank", Some(ADMIN)).await;
    assert_eq!(frank.json["owner"], "frank", "{}", frank.text);
    let gina = app.get("/v1/wallet/accounts/gina", Some(ADMIN)).await;
    assert_eq!(gina.json["credit_limit_minor"], 5, "{}", gina.text);

    let by_client = json!({"accounts": [{"account_id": "hank"}]});
    let refused = app
        .post(OPENINGS, Some(&app.client("alice").await), &by_client)
        .await;
    assert_eq!(refused.json["results"][0]["reason"], "not_allowed");
    let one_bad = json!({"accounts": [{"account_id": "ivan"}, {"account_id": "no spaces"}]});
    for (body, code) in [
        (one_bad, "invalid_account_id"),
        (json!({"accounts": []}), "batch_empty"),
        (
            json!({"accounts": [{"account_id": "ivan", "extra": 1}]}),
            "invalid_body",
        ),
    ] {
        let answer = app.post(OPENINGS, Some(ADMIN), &body).await;
        assert_eq!(answer.status, 400, "{code}: {}", answer.text);
        assert_eq!(answer.code(), code, "{}", answer.text);
    }
    for never in ["hank", "ivan"] {
        let answer = app
            .get(&format!("/v1/wallet/accounts/{never}"), Some(ADMIN))
            .await;
        assert_eq!(answer.status, 404, "{never}: {}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_status_names_nodes_partitions_and_heads() {
    let app = app().await;
    let answer = app.get("/v1/cluster/status", Some(ADMIN)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["node_id"], 1);
    assert_eq!(answer.json["nodes"], json!([1]));
    let partition = &answer.json["partitions"][0];
    assert_eq!(partition["partition"], 0);
    assert_eq!(partition["leader"], 1);
    assert!(partition["applied_index"].as_u64().is_some_and(|i| i > 0));
    assert_eq!(partition["chain_head"].as_str().map(str::len), Some(64));
    assert_eq!(partition["active_version"], crate::sm::RELEASE_HASH_HEX);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_wait_for_the_position_they_are_given() {
    let app = app().await;
    let body = transfer("alice", "bob", "1.00", "USD", &txid(320));
    let write = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
        .await;
    let position = write
        .header("wallet-position")
        .expect("a position")
        .to_owned();
    let (_, index) = position.split_once(':').expect("partition:index");
    let index: u64 = index.parse().expect("an index");
    let read = app
        .send(
            app.http
                .get(format!("{}/v1/wallet/accounts/bob", app.base))
                .header("wallet-position", &position),
            Some(ADMIN),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json["balances"]["USD"]["available"], "1.00");
    let reflected = read.header("wallet-position").expect("a position");
    let (_, reflected) = reflected.split_once(':').expect("partition:index");
    assert!(reflected.parse::<u64>().expect("an index") >= index);

    // A position past the end of the log was never answered with.
    let future = app
        .send(
            app.http
                .get(format!("{}/v1/wallet/accounts/bob", app.base))
                .header("wallet-position", format!("0:{}", index + 1_000_000)),
            Some(ADMIN),
        )
        .await;
    assert_eq!(future.status, 422, "{}", future.text);
    assert_eq!(future.code(), "position_unknown");
    // A partition the map neither has nor is splitting off: partition 0's
    // leader, which holds the map, never answered with it.
    let nowhere = app
        .send(
            app.http
                .get(format!("{}/v1/wallet/accounts/bob", app.base))
                .header("wallet-position", "1:5"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(nowhere.status, 422, "{}", nowhere.text);
    assert_eq!(nowhere.code(), "position_unknown");
    for bad in ["zero", "0:"] {
        let answer = app
            .send(
                app.http
                    .get(format!("{}/v1/wallet/accounts/bob", app.base))
                    .header("wallet-position", bad),
                Some(ADMIN),
            )
            .await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text);
        assert_eq!(answer.code(), "invalid_position");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn linearizable_reads_reflect_every_acknowledged_write() {
    let app = app().await;
    let body = transfer("alice", "bob", "2.00", "USD", &txid(330));
    let write = app
        .post("/v1/wallet/balance_transfer", Some(ADMIN), &body)
        .await;
    assert_eq!(write.status, 200, "{}", write.text);
    let read = |mode: &'static str| {
        app.send(
            app.http
                .get(format!("{}/v1/wallet/accounts/bob", app.base))
                .header("wallet-read", mode),
            Some(ADMIN),
        )
    };
    let answer = read("linearizable").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["balances"]["USD"]["available"], "2.00");
    for bad in ["stale", ""] {
        let answer = read(bad).await;
        assert_eq!(answer.status, 400, "{bad:?}: {}", answer.text);
        assert_eq!(answer.code(), "invalid_read");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_alone_refuses_membership_changes_and_bad_members_are_400() {
    let app = app().await;
    let add = json!({"node_id": 2, "address": "127.0.0.1:9"});
    let answer = app.post("/v1/cluster/members", Some(ADMIN), &add).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.code(), "membership_refused");
    for bad in [
        json!({"node_id": 0, "address": "127.0.0.1:9"}),
        json!({"node_id": 2, "address": "no-port"}),
        json!({"node_id": 2}),
    ] {
        let answer = app.post("/v1/cluster/members", Some(ADMIN), &bad).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text);
    }
    let client = app.post("/v1/cluster/members", None, &add).await;
    assert_eq!(client.status, 401);
    // A partition's replicas, likewise.
    let replica = json!({"node_id": 2});
    let answer = app
        .post("/v1/cluster/partitions/0/replicas", Some(ADMIN), &replica)
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.code(), "membership_refused");
    let answer = app
        .delete("/v1/cluster/partitions/0/replicas/1", Some(ADMIN))
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    for bad in [
        "/v1/cluster/partitions/x/replicas/1",
        "/v1/cluster/partitions/0/replicas/-1",
    ] {
        let answer = app.delete(bad, Some(ADMIN)).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text);
    }
    let answer = app
        .post(
            "/v1/cluster/partitions/0/replicas",
            Some(ADMIN),
            &json!({"node": 2}),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
}

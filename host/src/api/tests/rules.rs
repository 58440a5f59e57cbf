//! One definition of each rule: for every rule of `wallet_core`, a table of
//! inputs runs through the edge (over HTTP) and through the rules (a
//! command submitted to the node directly, past the edge), and the two
//! refuse exactly the same inputs.

use super::*;
use crate::service::{Reply, WalletService};
use serde_json::json;
use wallet_core::currency::codes;
use wallet_core::{Reason, account};

/// What the rules say of one command from an admin.
async fn rules(app: &App, command: Command<&str>) -> Reply {
    let mut calls = Calls::new();
    let call = Call {
        caller: Caller {
            role: Role::Admin,
            principal: "admin",
        },
        command,
    };
    calls.push(&call).expect("encodes");
    let submitted = app.probe.submit(calls).await.expect("submitted");
    submitted.replies.into_iter().next().expect("a reply")
}

/// Whether the edge refused a request as malformed, with `code`.
fn edge_refused(answer: &Answer, code: &str) -> bool {
    assert!(
        answer.status != 400 || answer.code() == code,
        "refused for another reason: {}",
        answer.text
    );
    answer.status == 400
}

fn rules_refused(reply: &Reply, reason: Reason) -> bool {
    assert!(!matches!(reply, Reply::Failed(_)), "{reply:?}");
    *reply == Reply::Rejected(reason)
}

fn deposit<'a>(id: u128, to: &'a str, amount: i64, currency: &str) -> Command<&'a str> {
    Command::Deposit(Transfer {
        id: Txid(id),
        from: account::BANK,
        to,
        amount,
        currency: Currency::parse(currency).expect("three bytes"),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_and_the_rules_refuse_the_same_account_ids_and_owners() {
    let app = app().await;
    let long = "x".repeat(64);
    let too_long = "x".repeat(65);
    let ids = [
        "dave",
        "external:bank",
        "a.b-c_d:9",
        &long,
        &too_long,
        "",
        "a b",
        "é",
        "a/b",
        "Alice Smith",
        "a@b",
        "tab\t",
    ];
    for id in ids {
        let answer = app
            .post(
                "/v1/wallet/accounts",
                Some(ADMIN),
                &json!({"account_id": id}),
            )
            .await;
        let edge = edge_refused(&answer, "invalid_account_id");
        // Where the edge opened it, the rules find it exists: a verdict on
        // the id all the same.
        let open = Command::OpenAccount(OpenAccount {
            account: id,
            owner: None,
            kind: AccountKind::Standard,
        });
        let ruled = rules(&app, open).await;
        assert_eq!(
            edge,
            rules_refused(&ruled, Reason::InvalidAccountId),
            "{id:?}"
        );
    }
    let owners = [
        "alice",
        "svc:payments",
        "ops@example.com",
        "Alice Smith",
        "",
        &too_long,
        "a/b",
    ];
    for (n, owner) in owners.iter().enumerate() {
        let body = json!({"account_id": format!("owned-{n}"), "owner": owner});
        let answer = app.post("/v1/wallet/accounts", Some(ADMIN), &body).await;
        let edge = edge_refused(&answer, "invalid_owner");
        let account = format!("owned-by-rules-{n}");
        let open = Command::OpenAccount(OpenAccount {
            account: account.as_str(),
            owner: Some(*owner),
            kind: AccountKind::Standard,
        });
        let ruled = rules(&app, open).await;
        assert_eq!(
            edge,
            rules_refused(&ruled, Reason::InvalidOwner),
            "{owner:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_and_the_rules_take_the_same_currencies_and_amounts() {
    let app = app().await;
    let others = ["XAU", "XDR", "ABC", "usd", "Usd"];
    let mut n = 1_000;
    for currency in codes().chain(others) {
        n += 1;
        let body = json!({"account_id": "bob", "amount": "1", "currency": currency,
            "transaction_id": txid(n)});
        let answer = app.post("/v1/wallet/deposit", Some(ADMIN), &body).await;
        let edge = edge_refused(&answer, "unknown_currency");
        let ruled = rules(&app, deposit(n + 100_000, "bob", 1, currency)).await;
        assert_eq!(
            edge,
            rules_refused(&ruled, Reason::UnknownCurrency),
            "{currency}"
        );
    }
    // Amounts in minor units: what the edge makes of their decimal form,
    // and what the rules make of them.
    for minor in [-1, 0, 1, 1_000, i64::MAX] {
        n += 1;
        let amount = super::super::money::format_minor(minor, 2);
        let body = json!({"account_id": "carol", "amount": amount, "currency": "EUR",
            "transaction_id": txid(n)});
        let answer = app.post("/v1/wallet/deposit", Some(ADMIN), &body).await;
        let edge = edge_refused(&answer, "invalid_amount");
        let ruled = rules(&app, deposit(n + 100_000, "dave", minor, "EUR")).await;
        assert_eq!(
            edge,
            rules_refused(&ruled, Reason::InvalidAmount),
            "{minor}"
        );
    }
    for (n, limit) in [-1i64, 0, 1, 500, i64::MAX].into_iter().enumerate() {
        let body = json!({"account_id": format!("credit-{n}"), "kind": "credit",
            "credit_limit_minor": limit});
        let answer = app.post("/v1/wallet/accounts", Some(ADMIN), &body).await;
        let edge = edge_refused(&answer, "invalid_credit_limit");
        let account = format!("credit-by-rules-{n}");
        let open = Command::OpenAccount(OpenAccount {
            account: account.as_str(),
            owner: None,
            kind: AccountKind::Credit(limit),
        });
        let ruled = rules(&app, open).await;
        assert_eq!(
            edge,
            rules_refused(&ruled, Reason::InvalidAmount),
            "{limit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_accounts_the_edge_names_are_the_ones_the_node_opens() {
    let app = app().await;
    for name in account::SYSTEM_ACCOUNTS {
        let answer = app
            .get(&format!("/v1/wallet/accounts/{name}"), Some(ADMIN))
            .await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.text);
        assert_eq!(answer.json["kind"], "system");
    }
    assert!(account::SYSTEM_ACCOUNTS.contains(&account::BANK));
}

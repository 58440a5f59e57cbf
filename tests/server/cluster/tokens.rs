//! Tokens are group state: `WALLET_ADMIN_TOKEN` seeds the group once, a
//! token made through one member works at once on another, and a
//! revocation holds on every member, across restarts.

use super::{Cluster, open_and_fund};
use crate::harness::{ADMIN, Api};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// A read of an account with `token`, sending `position` as
/// `Wallet-Position`.
async fn read_at(api: &Api, token: &str, position: &str) -> StatusCode {
    api.client
        .get(format!("{}/v1/wallet/accounts/acct-1", api.url))
        .bearer_auth(token)
        .header("wallet-position", position)
        .send()
        .await
        .expect("an answer")
        .status()
}

/// The body and `Wallet-Position` of a token change answered `expected`.
async fn stamped(answer: Response, expected: StatusCode) -> (Value, String) {
    let position = answer
        .headers()
        .get("wallet-position")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let status = answer.status();
    let body: Value = answer.json().await.expect("a JSON body");
    assert_eq!(status, expected, "{body}");
    (body, position.expect("a Wallet-Position"))
}

async fn create(api: &Api, role: &str) -> (Value, String) {
    let answer = api
        .client
        .post(format!("{}/v1/admin/tokens", api.url))
        .bearer_auth(ADMIN)
        .json(&json!({"role": role}))
        .send()
        .await
        .expect("an answer");
    stamped(answer, StatusCode::CREATED).await
}

async fn revoke(api: &Api, id: &str) -> String {
    let answer = api
        .client
        .delete(format!("{}/v1/admin/tokens/{id}", api.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("an answer");
    stamped(answer, StatusCode::OK).await.1
}

/// How many admin tokens `api`'s member knows.
async fn admin_tokens(api: &Api) -> usize {
    let (status, body) = api.get(Some(ADMIN), "/v1/admin/tokens").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens = body["tokens"].as_array().expect("a list");
    tokens.iter().filter(|t| t["role"] == "admin").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_group_state_seeded_once_and_honoured_by_every_member() {
    let mut cluster = Cluster::start(&[]);
    // The leader is agreed once every member answers the admin token.
    let leader = cluster.leader().await;
    open_and_fund(&cluster.api(leader)).await;
    for i in 0..3 {
        assert_eq!(
            admin_tokens(&cluster.api(i)).await,
            1,
            "three members were given WALLET_ADMIN_TOKEN; the group took it once"
        );
    }
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (a, b) = (cluster.api(followers[0]), cluster.api(followers[1]));

    // Made through one follower, used at once on the other.
    let (made, position) = create(&a, "auditor").await;
    let token = made["token"].as_str().expect("a token");
    assert_eq!(read_at(&b, token, &position).await, StatusCode::OK);
    let (kept, _) = create(&b, "auditor").await;
    let kept = kept["token"].as_str().expect("a token");

    // Revoked through the other follower: refused by every member that
    // applied the revocation.
    let id = made["id"].as_str().expect("an id");
    let position = revoke(&b, id).await;
    for i in 0..3 {
        let api = cluster.api(i);
        assert_eq!(read_at(&api, ADMIN, &position).await, StatusCode::OK);
        assert_eq!(
            read_at(&api, token, &position).await,
            StatusCode::UNAUTHORIZED,
            "member {} still takes a revoked token",
            i + 1
        );
    }

    // A member restarted with another WALLET_ADMIN_TOKEN: the group was
    // seeded already, so that token is not taken; the tokens it had are.
    let restarted = followers[0];
    cluster.kill9(restarted);
    let other_admin = "another-admin-token";
    let server = cluster
        .try_start_node_with(restarted, &[("WALLET_ADMIN_TOKEN", other_admin)])
        .expect("the member starts again");
    cluster.nodes[restarted] = Some(server);
    cluster.quiesce().await;
    for i in 0..3 {
        let api = cluster.api(i);
        assert_eq!(read_at(&api, kept, &position).await, StatusCode::OK);
        assert_eq!(
            read_at(&api, token, &position).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            read_at(&api, other_admin, &position).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(admin_tokens(&api).await, 1);
    }
}

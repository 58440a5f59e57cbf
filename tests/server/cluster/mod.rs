//! Three `wallet serve` processes as one replicated group on loopback:
//! leaders killed under load, a follower caught up by snapshot, a lost
//! majority, a frozen leader, messages from outside the cluster, and a
//! replica whose event chain diverges.

mod backup;
mod partitions;
mod tokens;
mod versions;

use crate::harness::{ADMIN, Api, Server, StartFailure};
use crate::recovery::replayed_head;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

const SECRET_A: &str = "cluster-secret-a-for-tests";
const SECRET_B: &str = "cluster-secret-b-for-tests";
const FUNDS_CENTS: i64 = 100_000;

struct Cluster {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    nodes: Vec<Option<Server>>,
    args: Vec<String>,
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("an address").port())
        .collect()
}

impl Cluster {
    /// Three members, each with `args` besides the cluster's own.
    fn start(args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("secret"), SECRET_A).expect("secret file");
        let mut cluster = Cluster {
            dir,
            ports: free_ports(3),
            nodes: vec![None, None, None],
            args: args.iter().map(ToString::to_string).collect(),
        };
        for i in 0..3 {
            cluster.start_node(i);
        }
        cluster
    }

    fn peers(&self) -> String {
        let peers: Vec<String> = (0..self.ports.len())
            .map(|i| format!("{}=127.0.0.1:{}", i + 1, self.ports[i]))
            .collect();
        peers.join(",")
    }

    fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{}", i + 1))
    }

    fn start_node(&mut self, i: usize) {
        let server = self.try_start_node(i).expect("a member starts");
        self.nodes[i] = Some(server);
    }

    fn try_start_node(&self, i: usize) -> Result<Server, StartFailure> {
        self.try_start_node_with(i, &[])
    }

    /// Member `i`, with environment variables `env` besides the cluster's.
    fn try_start_node_with(&self, i: usize, env: &[(&str, &str)]) -> Result<Server, StartFailure> {
        let listen = format!("127.0.0.1:{}", self.ports[i]);
        let id = (i + 1).to_string();
        let peers = self.peers();
        let secret = self.dir.path().join("secret");
        let secret = secret.to_str().expect("a UTF-8 path");
        let mut args = vec![
            "--listen",
            &listen,
            "--node-id",
            &id,
            "--peers",
            &peers,
            "--cluster-secret-file",
            secret,
        ];
        args.extend(self.args.iter().map(String::as_str));
        let mut env = env.to_vec();
        env.push(("WALLET_CLUSTER_SECRET", ""));
        Server::spawn(&self.data(i), &args, &env)
    }

    fn api(&self, i: usize) -> Api {
        Api::at(&format!("http://127.0.0.1:{}", self.ports[i]))
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut server) = self.nodes[i].take() {
            server.kill9();
        }
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.nodes[i]
            .as_ref()
            .and_then(Server::pid)
            .expect("running");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect()
    }

    /// The member that leads, as the live members agree, waiting for one.
    async fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut seen = Vec::new();
            for i in self.live() {
                let (_, body) = self.api(i).get(Some(ADMIN), "/v1/cluster/status").await;
                seen.push(body["partitions"][0]["leader"].as_u64());
            }
            if let Some(Some(leader)) = seen.first().copied()
                && seen.iter().all(|l| *l == Some(leader))
                && self.nodes[(leader - 1) as usize].is_some()
            {
                return (leader - 1) as usize;
            }
            assert!(Instant::now() < deadline, "no leader agreed on: {seen:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until member `i` knows the admin token: a member that has not
    /// yet applied the group's token entries answers 401.
    async fn authenticates(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.api(i).get(Some(ADMIN), "/v1/cluster/status").await.0 != StatusCode::OK {
            assert!(Instant::now() < deadline, "member {} knows no token", i + 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every member once they agree, then checks that each one's
    /// command archive replays from genesis to the chain head they held.
    async fn stop_and_replay(&mut self) {
        let head = self.quiesce().await[0]["chain_head"]
            .as_str()
            .expect("a head")
            .to_owned();
        for node in &mut self.nodes {
            node.take().expect("running").stop();
        }
        for i in 0..self.nodes.len() {
            assert_eq!(
                replayed_head(&self.data(i)),
                head,
                "member {} replays its archive to the group's head",
                i + 1
            );
        }
    }

    /// Waits until every live member applied and projected the same
    /// index; returns each one's status.
    async fn quiesce(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut statuses = Vec::new();
            for i in self.live() {
                let (_, body) = self.api(i).get(Some(ADMIN), "/v1/cluster/status").await;
                statuses.push(body["partitions"][0].clone());
            }
            let first = &statuses[0];
            let settled = statuses.iter().all(|s| {
                s["applied_index"] == first["applied_index"]
                    && s["projected_index"] == s["applied_index"]
            });
            if settled {
                return statuses;
            }
            assert!(
                Instant::now() < deadline,
                "the members did not converge: {statuses:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn accounts() -> Vec<String> {
    (0..16).map(|i| format!("acct-{i}")).collect()
}

/// Opens and funds every account through `api`.
async fn open_and_fund(api: &Api) {
    for account in accounts() {
        let body = json!({"account_id": account});
        let status = retry(api, "/v1/wallet/accounts", &body).await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "{status}"
        );
        let body = json!({"account_id": account, "amount": "1000.00", "currency": "USD",
                          "transaction_id": Uuid::new_v4().to_string()});
        assert_eq!(
            retry(api, "/v1/wallet/deposit", &body).await,
            StatusCode::OK
        );
    }
}

/// Posts until the answer is definitive (not 503, 429 or a lost answer).
async fn retry(api: &Api, path: &str, body: &Value) -> StatusCode {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api.try_post(Some(ADMIN), path, body.clone()).await {
            Ok((status, answer))
                if status != StatusCode::SERVICE_UNAVAILABLE
                    && status != StatusCode::TOO_MANY_REQUESTS =>
            {
                if !status.is_success() {
                    eprintln!("{path} {body}: {status} {answer}");
                }
                return status;
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "{path} never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A transfer's definitive outcome.
#[derive(Clone, Debug)]
struct Outcome {
    id: String,
    from: String,
    to: String,
    cents: i64,
    moved: bool,
}

/// Transfers between the accounts through every member in turn, each one
/// retried with its transaction id (against the next member) until it is
/// answered 200 or 422, until `stop`.
async fn transfer_until(apis: Arc<Vec<Api>>, seed: u64, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let accounts = accounts();
    let mut state = seed;
    let mut outcomes = Vec::new();
    let mut member = seed as usize;
    while !stop.load(Ordering::Relaxed) {
        let from = accounts[(next(&mut state) % 16) as usize].clone();
        let to = accounts[(next(&mut state) % 16) as usize].clone();
        let cents = (next(&mut state) % 500 + 1) as i64;
        let id = Uuid::new_v4().to_string();
        let amount = format!("{}.{:02}", cents / 100, cents % 100);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            member = (member + 1) % apis.len();
            if let Ok((status, body)) = apis[member].try_transfer(&from, &to, &amount, &id).await {
                match status {
                    StatusCode::OK => {
                        outcomes.push(Outcome {
                            id: id.clone(),
                            from: from.clone(),
                            to: to.clone(),
                            cents,
                            moved: true,
                        });
                        break;
                    }
                    StatusCode::UNPROCESSABLE_ENTITY => {
                        outcomes.push(Outcome {
                            id: id.clone(),
                            from: from.clone(),
                            to: to.clone(),
                            cents,
                            moved: false,
                        });
                        break;
                    }
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {}
                    other => panic!("transfer {id}: {other} {body}"),
                }
            }
            assert!(Instant::now() < deadline, "transfer {id} never answered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    outcomes
}

/// Every account's USD cents as member `api` sees them.
async fn balances(api: &Api) -> BTreeMap<String, i64> {
    let mut balances = BTreeMap::new();
    for account in accounts() {
        balances.insert(account.clone(), api.cents(&account).await);
    }
    balances
}

/// Every account's USD cents once exactly the transfers answered 200 moved.
fn expected_balances(outcomes: &[Outcome]) -> BTreeMap<String, i64> {
    let mut expected: BTreeMap<String, i64> =
        accounts().into_iter().map(|a| (a, FUNDS_CENTS)).collect();
    for outcome in outcomes.iter().filter(|o| o.moved) {
        *expected.get_mut(&outcome.from).expect("an account") -= outcome.cents;
        *expected.get_mut(&outcome.to).expect("an account") += outcome.cents;
    }
    expected
}

/// Checks the outcomes against every live member: equal chain heads and
/// balances, each the funds moved by exactly the transfers answered 200.
async fn check(cluster: &Cluster, outcomes: &[Outcome]) {
    let statuses = cluster.quiesce().await;
    let heads: Vec<&Value> = statuses.iter().map(|s| &s["chain_head"]).collect();
    assert!(
        heads.iter().all(|h| *h == heads[0]),
        "chain heads differ: {heads:?}"
    );
    let expected = expected_balances(outcomes);
    for i in cluster.live() {
        let api = cluster.api(i);
        assert_eq!(balances(&api).await, expected, "member {}", i + 1);
        assert_moved(&api, outcomes, 7).await;
    }
}

/// Every `every`th transfer of `outcomes` answered 200 is a success at
/// `api`.
async fn assert_moved(api: &Api, outcomes: &[Outcome], every: usize) {
    for outcome in outcomes.iter().filter(|o| o.moved).step_by(every) {
        let (status, body) = api
            .get(Some(ADMIN), &format!("/v1/wallet/transfers/{}", outcome.id))
            .await;
        assert_eq!(
            (status, &body["status"]),
            (StatusCode::OK, &json!("success")),
            "{}: {body}",
            api.url
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn leaders_killed_under_load_lose_nothing_and_apply_nothing_twice() {
    let mut cluster = Cluster::start(&[]);
    cluster.leader().await;
    open_and_fund(&cluster.api(0)).await;
    let apis = Arc::new((0..3).map(|i| cluster.api(i)).collect::<Vec<_>>());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|seed| tokio::spawn(transfer_until(apis.clone(), seed * 7919 + 1, stop.clone())))
        .collect();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let leader = cluster.leader().await;
        cluster.kill9(leader);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cluster.start_node(leader);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }
    assert!(
        outcomes.iter().filter(|o| o.moved).count() > 50,
        "too few transfers to mean anything: {}",
        outcomes.len()
    );
    check(&cluster, &outcomes).await;
}

/// The `snapshots_installed` counter of member `i`.
async fn snapshots_installed(api: &Api) -> u64 {
    let text = api
        .client
        .get(format!("{}/metrics", api.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("snapshots_installed "))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_behind_the_compacted_log_catches_up_by_snapshot() {
    let mut cluster = Cluster::start(&["--snapshot-entries", "100"]);
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    open_and_fund(&api).await;
    let behind = (leader + 1) % 3;
    cluster.kill9(behind);
    // Hundreds of entries: the log is snapshotted and purged past where
    // the stopped member is.
    let apis = Arc::new(vec![cluster.api(leader)]);
    let stop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn(transfer_until(apis, 3, stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
        if status["partitions"][0]["applied_index"].as_u64() > Some(600) {
            break;
        }
        assert!(Instant::now() < deadline, "too slow: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let outcomes = client.await.expect("the client");
    cluster.start_node(behind);
    check(&cluster, &outcomes).await;
    assert!(
        snapshots_installed(&cluster.api(behind)).await >= 1,
        "the member caught up without a snapshot"
    );
    // Its event history is whole: the read models were built from it.
    let history = "/v1/wallet/accounts/acct-3/history?limit=1000";
    let (_, mine) = cluster.api(behind).get(Some(ADMIN), history).await;
    let (_, theirs) = api.get(Some(ADMIN), history).await;
    assert_eq!(mine["events"], theirs["events"]);
    assert!(mine["events"].as_array().is_some_and(|e| !e.is_empty()));
    // And it restarts from what it installed.
    cluster.kill9(behind);
    cluster.start_node(behind);
    check(&cluster, &outcomes).await;
    // Its command archive is whole too: it came with the snapshot, and the
    // log the snapshot replaced is gone.
    cluster.stop_and_replay().await;
    let raft = cluster.data(behind).join("partition-0/raft");
    let leftovers: Vec<_> = std::fs::read_dir(&raft)
        .expect("the raft dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("archive-"))
        .collect();
    assert!(leftovers.is_empty(), "logs kept aside: {leftovers:?}");
}

/// A GET with `Wallet-Read: linearizable`.
async fn linearizable(api: &Api, path: &str) -> (StatusCode, Value) {
    let answer = api
        .client
        .get(format!("{}{path}", api.url))
        .bearer_auth(ADMIN)
        .header("wallet-read", "linearizable")
        .send()
        .await
        .expect("an answer");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn any_member_reads_its_clients_writes_and_linearizable_reads_see_every_write() {
    let mut cluster = Cluster::start(&[]);
    let leader = cluster.leader().await;
    open_and_fund(&cluster.api(leader)).await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for round in 0..20 {
        // Written through one follower, read back on the other.
        let (writer, reader) = (
            cluster.api(followers[round % 2]),
            cluster.api(followers[1 - round % 2]),
        );
        let id = Uuid::new_v4().to_string();
        let (status, body) = writer.transfer("acct-1", "acct-2", "0.01", &id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = linearizable(&reader, &format!("/v1/wallet/transfers/{id}")).await;
        assert_eq!(
            (status, &body["status"]),
            (StatusCode::OK, &json!("success")),
            "{body}"
        );
    }
    assert_eq!(
        cluster.api(followers[0]).cents("acct-2").await,
        FUNDS_CENTS + 20,
        "a plain read after a linearizable one reflects it too"
    );
    // Without a majority there is no read index: 503, never a stale answer.
    cluster.kill9(leader);
    cluster.kill9(followers[1]);
    let (status, _) = linearizable(&cluster.api(followers[0]), "/v1/wallet/accounts/acct-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = cluster
        .api(followers[0])
        .get(Some(ADMIN), "/v1/wallet/accounts/acct-1")
        .await;
    assert_eq!(status, StatusCode::OK, "plain reads keep serving");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_is_added_while_the_group_serves_and_another_removed() {
    let mut cluster = Cluster::start(&[]);
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    open_and_fund(&api).await;
    // A fourth member, started to join: first with another partition
    // count, which would apply calls by another map, and is refused.
    let port = free_ports(1)[0];
    cluster.ports.push(port);
    cluster
        .args
        .extend(["--join".into(), "--partitions".into(), "2".into()]);
    cluster.nodes.push(None);
    cluster.start_node(3);
    let body = json!({"node_id": 4, "address": format!("127.0.0.1:{port}")});
    let (status, answer) = api
        .post(Some(ADMIN), "/v1/cluster/members", body.clone())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("runs 2 partitions, the cluster 1"),
        "{answer}"
    );
    cluster.kill9(3);
    std::fs::remove_dir_all(cluster.data(3)).expect("its data directory goes");
    cluster.args.truncate(cluster.args.len() - 2);
    cluster.start_node(3);
    let apis = Arc::new(vec![cluster.api(leader)]);
    let stop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn(transfer_until(apis, 11, stop.clone()));
    let (status, answer) = api.post(Some(ADMIN), "/v1/cluster/members", body).await;
    assert_eq!(
        (status, &answer["members"]),
        (StatusCode::OK, &json!([1, 2, 3, 4])),
        "{answer}"
    );
    // One of the first three goes, while transfers go on.
    let gone = (leader + 1) % 3;
    let path = format!("/v1/cluster/members/{}", gone + 1);
    let (status, answer) = api.delete(Some(ADMIN), &path).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    stop.store(true, Ordering::Relaxed);
    let outcomes = client.await.expect("the client");
    cluster.kill9(gone);
    check(&cluster, &outcomes).await;
    let (_, status) = cluster.api(3).get(Some(ADMIN), "/v1/cluster/status").await;
    assert_eq!(
        status["partitions"][0]["members"].as_array().map(Vec::len),
        Some(3)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_majority_writes_get_503_then_resume_by_themselves() {
    let mut cluster = Cluster::start(&[]);
    let leader = cluster.leader().await;
    open_and_fund(&cluster.api(leader)).await;
    let survivor = (leader + 1) % 3;
    for i in 0..3 {
        if i != survivor {
            cluster.kill9(i);
        }
    }
    let api = cluster.api(survivor);
    for _ in 0..3 {
        let started = Instant::now();
        let id = Uuid::new_v4().to_string();
        let answer = api
            .client
            .post(format!("{}/v1/wallet/balance_transfer", api.url))
            .bearer_auth(ADMIN)
            .json(
                &json!({"from_account": "acct-1", "to_account": "acct-2", "amount": "1.00",
                          "currency": "USD", "transaction_id": id}),
            )
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(answer.headers().contains_key("retry-after"));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster.start_node((survivor + 1) % 3);
    let body = json!({"from_account": "acct-1", "to_account": "acct-2", "amount": "1.00",
                      "currency": "USD", "transaction_id": Uuid::new_v4().to_string()});
    assert_eq!(
        retry(&api, "/v1/wallet/balance_transfer", &body).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_leader_is_replaced_and_acknowledges_nothing_it_cannot_keep() {
    let cluster = Cluster::start(&[]);
    let leader = cluster.leader().await;
    open_and_fund(&cluster.api(leader)).await;
    cluster.signal(leader, "-STOP");
    let frozen = cluster.api(leader);
    // Sent while it is frozen: answered once it resumes.
    let late = tokio::spawn(async move {
        let id = Uuid::new_v4().to_string();
        let answer = frozen.try_transfer("acct-5", "acct-6", "3.00", &id).await;
        (id, answer.map(|(status, _)| status))
    });
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let api = cluster.api(others[0]);
    let body = json!({"from_account": "acct-1", "to_account": "acct-2", "amount": "1.00",
                      "currency": "USD", "transaction_id": Uuid::new_v4().to_string()});
    let started = Instant::now();
    assert_eq!(
        retry(&api, "/v1/wallet/balance_transfer", &body).await,
        StatusCode::OK
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.signal(leader, "-CONT");
    let (id, answer) = late.await.expect("the late request");
    cluster.quiesce().await;
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader, "the frozen leader took over again");
    let (_, body) = api
        .get(Some(ADMIN), &format!("/v1/wallet/transfers/{id}"))
        .await;
    match answer {
        // Acknowledged: then it is in the group's history.
        Ok(StatusCode::OK) => assert_eq!(body["status"], "success", "{body}"),
        // Refused or lost: retrying with its id is what the client does.
        Ok(other) => assert_ne!(other, StatusCode::OK),
        Err(_) => {}
    }
    let (_, status) = cluster
        .api(leader)
        .get(Some(ADMIN), "/v1/cluster/status")
        .await;
    assert_eq!(
        status["partitions"][0]["leader"].as_u64(),
        Some(new_leader as u64 + 1)
    );
}

fn signed(secret: &str, path: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("a key");
    mac.update(path.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A vote request with an undecodable body, signed with `secret`: 401 if
/// the secret is refused, 400 if accepted (and the body then read).
async fn probe(api: &Api, secret: Option<&str>) -> StatusCode {
    let path = "/v1/raft/0/vote";
    let mut request = api.client.post(format!("{}{path}", api.url)).body("junk");
    if let Some(secret) = secret {
        request = request.header("wallet-cluster-mac", signed(secret, path, b"junk"));
    }
    request.send().await.expect("an answer").status()
}

#[tokio::test(flavor = "multi_thread")]
async fn strangers_are_refused_and_a_rotated_secret_takes_effect_without_restarts() {
    let cluster = Cluster::start(&[]);
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    assert_eq!(probe(&api, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&api, Some(SECRET_B)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&api, Some(SECRET_A)).await, StatusCode::BAD_REQUEST);

    // The new secret accepted everywhere, then signing, then alone.
    let file = cluster.dir.path().join("secret");
    for step in [
        format!("{SECRET_A}\n{SECRET_B}"),
        format!("{SECRET_B}\n{SECRET_A}"),
        SECRET_B.to_string(),
    ] {
        std::fs::write(&file, step).expect("the secret file");
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    assert_eq!(probe(&api, Some(SECRET_A)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&api, Some(SECRET_B)).await, StatusCode::BAD_REQUEST);
    // The members still talk: a write through a follower commits.
    open_and_fund(&cluster.api((leader + 1) % 3)).await;
    let statuses = cluster.quiesce().await;
    assert!(statuses[0]["applied_index"].as_u64() > Some(16));
}

impl Cluster {
    /// Makes member `i` alter the next event record it makes (test builds
    /// only; see host/src/raft/fault.rs).
    fn alter_next_record(&self, i: usize) {
        let path = self
            .data(i)
            .join("partition-0/state/fault-alter-next-record");
        std::fs::write(path, "").expect("the fault file");
    }

    /// Waits until member `i` says it diverged; its status.
    async fn fenced(&self, i: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.api(i).get(Some(ADMIN), "/v1/cluster/status").await;
            let partition = &body["partitions"][0];
            if partition["diverged"].is_object() {
                return partition.clone();
            }
            assert!(Instant::now() < deadline, "member {} was not fenced", i + 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Transfers through `api`, each retried until answered.
async fn some_transfers(api: &Api, n: usize) {
    for _ in 0..n {
        let body = json!({"from_account": "acct-1", "to_account": "acct-2", "amount": "0.10",
                          "currency": "USD", "transaction_id": Uuid::new_v4().to_string()});
        assert_eq!(
            retry(api, "/v1/wallet/balance_transfer", &body).await,
            StatusCode::OK
        );
    }
}

/// A fenced member refuses reads and writes, says why, and does not start
/// again; the other two serve and agree.
async fn check_fenced(cluster: &mut Cluster, fenced: usize) {
    let status = cluster.fenced(fenced).await;
    let verdict = &status["diverged"];
    assert_ne!(verdict["held"], verdict["majority"], "{status}");
    let api = cluster.api(fenced);
    let (code, body) = api.get(Some(ADMIN), "/v1/wallet/accounts/acct-1").await;
    assert_eq!(
        (code, &body["error"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("diverged")),
        "{body}"
    );
    let id = Uuid::new_v4().to_string();
    let (code, body) = api
        .try_transfer("acct-1", "acct-2", "1.00", &id)
        .await
        .expect("an answer");
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let metrics = api
        .client
        .get(format!("{}/metrics", api.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("replica_diverged 1"), "{metrics}");

    let others: Vec<usize> = (0..3).filter(|&i| i != fenced).collect();
    some_transfers(&cluster.api(others[0]), 20).await;
    cluster.kill9(fenced);
    let statuses = cluster.quiesce().await;
    assert_eq!(statuses[0]["chain_head"], statuses[1]["chain_head"]);
    let leader = cluster.leader().await;
    assert_ne!(leader, fenced);

    let refused = cluster.try_start_node(fenced);
    let failure = refused.err().expect("a fenced member does not start again");
    assert!(failure.stderr.contains("fenced"), "{}", failure.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_that_diverges_is_fenced_and_the_others_keep_serving() {
    let mut cluster = Cluster::start(&[]);
    let leader = cluster.leader().await;
    open_and_fund(&cluster.api(leader)).await;
    let follower = (leader + 1) % 3;
    cluster.alter_next_record(follower);
    some_transfers(&cluster.api(leader), 5).await;
    check_fenced(&mut cluster, follower).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_diverges_steps_down_fenced_and_the_others_keep_serving() {
    let mut cluster = Cluster::start(&[]);
    let leader = cluster.leader().await;
    open_and_fund(&cluster.api(leader)).await;
    cluster.alter_next_record(leader);
    let other = cluster.api((leader + 1) % 3);
    some_transfers(&other, 5).await;
    check_fenced(&mut cluster, leader).await;
}

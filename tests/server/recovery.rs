//! Crashes at random moments under concurrent load, and read models rebuilt
//! from the event log.

use crate::harness::{ADMIN, Api, Server};
use crate::{all_balances, id};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wallet_host::node::{Holdings, PartitionMap};
use wallet_host::sm::new_engine;

const ACCOUNTS: usize = 8;

fn accounts() -> Vec<String> {
    let mut names = vec!["external:bank".to_string()];
    names.extend((0..ACCOUNTS).map(|i| format!("acct-{i}")));
    names
}

async fn open_and_fund(api: &Api) {
    for i in 0..ACCOUNTS {
        let name = format!("acct-{i}");
        api.open(&name, "owner").await;
        api.deposit(&name, "1000.00").await;
    }
}

/// splitmix64: every random choice of a round flows from its seed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sends transfers from `clients` tasks until the server dies; returns the
/// transaction ids it acknowledged.
async fn load_until_killed(
    server: &mut Server,
    api: &Arc<Api>,
    seed: u64,
    run_for: Duration,
) -> Vec<String> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for client in 0..16u64 {
        let (api, acked) = (api.clone(), acked.clone());
        let mut rng = seed ^ (client << 32);
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next(&mut rng) as usize % ACCOUNTS;
                let to = (from + 1 + next(&mut rng) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                let tx = id();
                let (from, to) = (format!("acct-{from}"), format!("acct-{to}"));
                let request = api.try_transfer(&from, &to, "0.01", &tx);
                match tokio::time::timeout(Duration::from_secs(5), request).await {
                    Ok(Ok((StatusCode::OK, _))) => acked.lock().expect("lock").push(tx),
                    // Answered but not applied (a busy or starting node):
                    // not acknowledged; go on.
                    Ok(Ok(_)) => {}
                    // No answer: the server is gone.
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(run_for).await;
    server.kill9();
    for task in tasks {
        let _ = task.await;
    }
    acked.lock().expect("lock").clone()
}

/// The chain head a replay of the stopped node's command archive (of its
/// one partition) makes.
pub(crate) fn replayed_head(data: &Path) -> String {
    let engine = new_engine(None).expect("engine");
    let only_one = Holdings::new(&PartitionMap::new(1), 0);
    let replay = wallet_host::audit::replay(&data.join("partition-0"), only_one, &engine)
        .expect("the log replays");
    hex::encode(replay.chain_head)
}

/// Every acknowledged transfer is there exactly once, money is conserved,
/// and the read models equal a recomputation from the event log; then, after
/// a clean stop, the chain head equals a replay's.
async fn check(data: &Path, server: &mut Server, api: &Api, acked: &[String]) {
    api.caught_up().await;
    for tx in acked {
        let (status, body) = api
            .get(Some(ADMIN), &format!("/v1/wallet/transfers/{tx}"))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged {tx} is missing after restart"
        );
        assert_eq!(body["status"], "success");
        assert_eq!(
            body.to_string().matches("debited").count(),
            1,
            "{tx} took effect once: {body}"
        );
    }
    let balances = all_balances(api, &accounts()).await;
    assert_eq!(
        balances.values().sum::<i64>(),
        0,
        "conservation: {balances:?}"
    );
    let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
    let head = status["partitions"][0]["chain_head"]
        .as_str()
        .expect("a head")
        .to_owned();
    server.stop();

    let events =
        wallet_host::store::read_events(&data.join("partition-0/state")).expect("event log reads");
    let recomputed = wallet_host::store::recompute_balances(&events);
    for (account, cents) in balances {
        let from_log = recomputed
            .get(&(account.clone(), "USD".to_string()))
            .map_or(0, |b| b.0);
        assert_eq!(from_log, i128::from(cents), "{account}");
    }
    assert_eq!(
        replayed_head(data),
        head,
        "the chain head equals a replay's"
    );
}

/// `WALLET_CRASH_ROUNDS` rounds (6 by default; the soak in the README runs
/// 100): each loads the server for a random moment, kills it with -9,
/// restarts it and checks everything acknowledged survived.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let rounds: u64 = std::env::var("WALLET_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    open_and_fund(&Api::new(&server)).await;
    let mut seed = 0x5eed_c2a5_u64;
    let mut acked_total = Vec::new();
    for round in 0..rounds {
        let api = Arc::new(Api::new(&server));
        let run_for = Duration::from_millis(200 + next(&mut seed) % 1300);
        let acked = load_until_killed(&mut server, &api, next(&mut seed), run_for).await;
        assert!(!acked.is_empty(), "round {round}: the load ran");
        acked_total.extend(acked);
        server = Server::start(&data);
        let api = Api::new(&server);
        check(&data, &mut server, &api, &acked_total).await;
        server = Server::start(&data);
    }
    server.stop();
}

/// The rules storing accounts in a compact layout, whose migration rewrites
/// every account at the switch.
const COMPACT_RELEASE: &[u8] =
    include_bytes!("../../guest-statemachine/releases/statemachine-2.5.0+compact-accounts.wasm");

/// Deploys, verifies and activates `component` on a single node; its hash.
async fn switch_to(api: &Api, component: &[u8]) -> String {
    let admin = |request: reqwest::RequestBuilder| request.bearer_auth(ADMIN).send();
    let deploy = api
        .client
        .post(format!("{}/v1/admin/versions", api.url))
        .header("content-type", "application/wasm")
        .body(component.to_vec());
    let deployed: Value = admin(deploy)
        .await
        .expect("deployed")
        .json()
        .await
        .expect("JSON");
    let hash = deployed["hash"].as_str().expect("a hash").to_owned();
    let verify = api
        .client
        .post(format!("{}/v1/admin/versions/{hash}/verify", api.url));
    let lines = admin(verify)
        .await
        .expect("verified")
        .text()
        .await
        .expect("a body");
    assert!(lines.contains("\"report\""), "{lines}");
    let activate = api
        .client
        .post(format!("{}/v1/admin/versions/{hash}/activate", api.url))
        .json(&json!({}));
    let activated = admin(activate).await.expect("activated");
    assert_eq!(activated.status(), StatusCode::OK);
    hash
}

/// A version whose migration rewrites 40,000 accounts, activated under
/// load, and the node killed with -9 a while after (a delay per round:
/// at 20 ms the migration is usually not durable yet and runs again on
/// restart; by 400 ms its write and its mark are, and the entries after
/// them are not, so the restarted node applies them without migrating
/// again). Restarted, it loses nothing acknowledged, serves under the new
/// version, its archive replays to its chain head, and `wallet audit`
/// passes, having run the migration once.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_around_a_migration_loses_nothing_and_migrates_once() {
    for (round, delay_ms) in [20, 400, 1500].into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut server = Server::start(&data);
        let api = Arc::new(Api::new(&server));
        open_and_fund(&api).await;
        for chunk in 0..5 {
            let accounts: Vec<Value> = (0..8000)
                .map(|i| json!({"account_id": format!("idle-{chunk}-{i}")}))
                .collect();
            let (status, body) = api
                .post(
                    Some(ADMIN),
                    "/v1/wallet/account_openings",
                    json!({"accounts": accounts}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let hash = switch_to(&api, COMPACT_RELEASE).await;
        let run_for = Duration::from_millis(delay_ms);
        let acked = load_until_killed(&mut server, &api, round as u64 + 1, run_for).await;

        let mut server = Server::start(&data);
        let api = Api::new(&server);
        // The new version serves, on the migrated state.
        api.caught_up().await;
        let (status, body) = api.transfer("acct-0", "acct-1", "0.01", &id()).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
        assert_eq!(status["partitions"][0]["active_version"], hash.as_str());
        check(&data, &mut server, &api, &acked).await;
        let (passed, report, stderr) = crate::audit::audit(&data, &[]);
        assert!(passed, "round {round}: {report} {stderr}");
        let migrations = &report["migrations"];
        assert_eq!(migrations.as_array().map(Vec::len), Some(1), "{migrations}");
        assert!(
            migrations[0]["writes"].as_u64() > Some(40_000),
            "{migrations}"
        );
    }
}

/// Every account's balances and history, and every transfer, as a client
/// of the API sees them.
async fn everything(api: &Api, transfers: &[String]) -> BTreeMap<String, Value> {
    let mut seen = BTreeMap::new();
    for account in accounts() {
        let (_, body) = api
            .get(Some(ADMIN), &format!("/v1/wallet/accounts/{account}"))
            .await;
        seen.insert(account.clone(), body);
        let path = format!("/v1/wallet/accounts/{account}/history?limit=1000");
        let (_, body) = api.get(Some(ADMIN), &path).await;
        seen.insert(format!("{account} history"), body);
    }
    for tx in transfers {
        let (_, body) = api
            .get(Some(ADMIN), &format!("/v1/wallet/transfers/{tx}"))
            .await;
        seen.insert(tx.clone(), body);
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn read_models_rebuilt_from_the_event_log_equal_the_incremental_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let api = Api::new(&server);
    open_and_fund(&api).await;
    let mut transfers = Vec::new();
    for n in 0..60usize {
        let tx = id();
        // Some overdraw and are refused: refusals are events too.
        let amount = if n % 7 == 0 { "5000.00" } else { "1.25" };
        let (from, to) = (n % ACCOUNTS, (n + 3) % ACCOUNTS);
        api.transfer(&format!("acct-{from}"), &format!("acct-{to}"), amount, &tx)
            .await;
        transfers.push(tx);
    }
    let batch: Vec<Value> = (0..40)
        .map(|n| {
            let tx = id();
            transfers.push(tx.clone());
            json!({"from_account": format!("acct-{}", n % ACCOUNTS), "to_account": "acct-0",
                   "amount": "0.10", "currency": "USD", "transaction_id": tx})
        })
        .collect();
    let (status, _) = api
        .post(
            Some(ADMIN),
            "/v1/wallet/balance_transfers",
            json!({"transfers": batch}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    api.caught_up().await;
    let incremental = everything(&api, &transfers).await;
    server.stop();

    std::fs::remove_dir_all(data.join("partition-0/views")).expect("drop the read models");
    let server = Server::start(&data);
    let api = Api::new(&server);
    api.caught_up().await;
    let rebuilt = everything(&api, &transfers).await;
    assert_eq!(rebuilt, incremental);
}

//! The edge driven over real HTTP against a real node in this process (its
//! Raft group, store, rules and read models in a temporary directory),
//! behind a probe that counts submissions and can inject failures.

mod access;
mod ops;
mod partitions;
mod probe;
mod reads;
mod rules;
mod transfers;
mod validation;
mod versions;

use super::{install_recorder, router};
use crate::node::{Node, NodeConfig};
use crate::service::WalletService;
use crate::tokens::{RoleName, StoredToken, TokenChange, TokenOutcome};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use probe::Probe;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use wallet_core::account::BANK;
use wallet_core::codec::Calls;
use wallet_core::{
    AccountKind, Call, Caller, Command, Currency, OpenAccount, Role, Transfer, Txid,
};

pub const ADMIN: &str = "admin-token-for-tests";

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    /// The error code of a failure body, or the reason of an outcome.
    pub fn code(&self) -> &str {
        self.json["error"]
            .as_str()
            .or(self.json["reason"].as_str())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub probe: Arc<Probe>,
    /// Holds the node's data directory for as long as the app lives.
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A node in `dir` running `partitions` partitions, with compiled
/// components shared across the test run.
pub async fn partitioned_node(
    dir: &std::path::Path,
    partitions: u32,
    coordination: crate::coordinator::Mode,
) -> Node {
    let config = NodeConfig {
        data_dir: dir.to_owned(),
        node_id: 1,
        advertise: "127.0.0.1:0".into(),
        free_space_floor_bytes: 0,
        wasm_cache_dir: crate::test_support::wasm_cache_dir(),
        partition: crate::test_support::options(),
        group: crate::partition::Group::alone(),
        partitions: Some(partitions),
        coordination,
        admin_token: Some(ADMIN.into()),
    };
    Node::start(&config).await.expect("the node starts")
}

fn admin() -> Caller<&'static str> {
    Caller {
        role: Role::Admin,
        principal: "admin",
    }
}

/// alice (owner alice, 100.00 USD), bob (owner bob), carol (owner carol,
/// credit account with a limit of 500 minor units), and the bank.
pub async fn app() -> App {
    app_with(1, crate::coordinator::Mode::Tcc).await
}

/// The same world on a node running `partitions` partitions.
pub async fn app_with(partitions: u32, coordination: crate::coordinator::Mode) -> App {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = partitioned_node(&dir.path().join("node"), partitions, coordination).await;
    let mut calls = Calls::new();
    let opens = [
        ("alice", AccountKind::Standard),
        ("bob", AccountKind::Standard),
        ("carol", AccountKind::Credit(500)),
    ];
    for (account, kind) in opens {
        let open = OpenAccount {
            account,
            owner: Some(account),
            kind,
        };
        let call = Call {
            caller: admin(),
            command: Command::OpenAccount(open),
        };
        calls.push(&call).expect("encodes");
    }
    let deposit = Transfer {
        id: Txid(1),
        from: BANK,
        to: "alice",
        amount: 10_000,
        currency: Currency(*b"USD"),
    };
    let call = Call {
        caller: admin(),
        command: Command::Deposit(deposit),
    };
    calls.push(&call).expect("encodes");
    let submitted = crate::service::WalletService::submit(&node, calls)
        .await
        .expect("the world is set up");
    assert!(
        submitted
            .replies
            .iter()
            .all(|r| *r == crate::service::Reply::Accepted)
    );

    let probe = Arc::new(Probe::new(node));
    let app = router(Arc::clone(&probe), metrics_handle());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    App {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        probe,
        _dir: dir,
        server,
    }
}

impl App {
    /// A new token, through the log as an admin's request would make it.
    pub async fn token(
        &self,
        role: RoleName,
        owner: Option<&str>,
        expires_ms: Option<u64>,
    ) -> String {
        let token = crate::tokens::new_secret();
        let stored = StoredToken::new(&token, role, owner.map(String::from), expires_ms);
        let (outcome, _) = self
            .probe
            .change_tokens(TokenChange::Create(stored))
            .await
            .expect("the token is made");
        assert!(matches!(outcome, TokenOutcome::Created(_)), "{outcome:?}");
        token
    }

    pub async fn client(&self, owner: &str) -> String {
        self.token(RoleName::Client, Some(owner), None).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, token: Option<&str>) -> Answer {
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request, token).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send(request, token).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)), token)
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(self.http.delete(format!("{}{path}", self.base)), token)
            .await
    }

    /// An account's available balance in minor units, as the read models
    /// show it once they reflect everything applied.
    pub async fn balance(&self, account: &str, currency: &str) -> i64 {
        self.probe.balance(account, currency).await
    }
}

pub fn transfer(from: &str, to: &str, amount: &str, currency: &str, id: &str) -> Value {
    json!({
        "from_account": from, "to_account": to, "amount": amount,
        "currency": currency, "transaction_id": id,
    })
}

/// A distinct, valid transaction id.
pub fn txid(n: u128) -> String {
    uuid::Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 + n).to_string()
}

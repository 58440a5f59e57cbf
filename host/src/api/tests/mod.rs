//! The edge driven over real HTTP against a fake service.

mod access;
mod fake;
mod ops;
mod reads;
mod transfers;
mod validation;

use super::{Auth, BANK_ACCOUNT, Role, install_recorder, router};
use crate::sm::AccountKind;
use fake::Fake;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

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
    pub fake: Arc<Fake>,
    pub auth: Arc<Auth>,
    pub dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// alice (owner alice, 100.00 USD), bob (owner bob), the bank, and carol
/// (credit account, limit 500 minor units).
pub async fn app() -> App {
    let fake = Arc::new(Fake::default());
    fake.open(BANK_ACCOUNT, None, AccountKind::System);
    fake.open("alice", Some("alice"), AccountKind::Standard);
    fake.open("bob", Some("bob"), AccountKind::Standard);
    fake.open("carol", Some("carol"), AccountKind::Credit(500));
    fake.set_balance("alice", "USD", 10_000);
    fake.set_balance(BANK_ACCOUNT, "USD", -10_000);

    let dir = tempfile::tempdir().expect("tempdir");
    let (auth, printed) = Auth::open_with(dir.path(), Some(ADMIN.into())).expect("auth");
    assert_eq!(printed, None);
    let auth = Arc::new(auth);
    let app = router(Arc::clone(&fake), Arc::clone(&auth), metrics_handle());
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
        fake,
        auth,
        dir,
        server,
    }
}

impl App {
    pub fn token(&self, role: Role) -> String {
        self.auth.create_token(role).expect("token")
    }

    pub fn client(&self, owner: &str) -> String {
        self.token(Role::Client {
            owner: owner.into(),
        })
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

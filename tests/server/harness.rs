//! Real `wallet serve` processes on loopback, driven over real HTTP.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const ADMIN: &str = "test-admin-token";
const START_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Server {
    child: Option<Child>,
    pub url: String,
}

/// Why a server did not come up.
#[derive(Debug)]
pub struct StartFailure {
    pub code: Option<i32>,
    pub stderr: String,
}

/// Loopback, small segments and no free-space floor, unless a test says
/// otherwise: flag and value pairs.
const TEST_ARGS: &[(&str, &str)] = &[
    ("--listen", "127.0.0.1:0"),
    ("--segment-mb", "4"),
    ("--free-space-floor-mb", "0"),
    ("--flush-mb", "4"),
];

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Server::try_start(data_dir).expect("the server starts")
    }

    /// Starts on a port the OS picks; the server prints the address it got.
    pub fn try_start(data_dir: &Path) -> Result<Server, StartFailure> {
        Server::try_start_with(data_dir, &[])
    }

    /// Starts with `args`, which replace the test defaults they name. The
    /// data directory is given relative to the server's working directory,
    /// as the README's `./wallet-data` is.
    pub fn try_start_with(data_dir: &Path, args: &[&str]) -> Result<Server, StartFailure> {
        Server::spawn(data_dir, args, &[("WALLET_CLUSTER_SECRET", "")])
    }

    /// Starts with `args` and environment variables `env` (an empty value
    /// removes the variable; `WALLET_ADMIN_TOKEN` is `ADMIN` unless `env`
    /// says otherwise).
    pub fn spawn(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, StartFailure> {
        let stderr_path = data_dir.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log");
        let defaults = TEST_ARGS
            .iter()
            .filter(|(flag, _)| !args.contains(flag))
            .flat_map(|(flag, value)| [*flag, *value]);
        let (parent, name) = (
            data_dir.parent().expect("a data directory inside another"),
            data_dir.file_name().expect("a named data directory"),
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_wallet"));
        command.env("WALLET_ADMIN_TOKEN", ADMIN);
        for (name, value) in env {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let mut child = command
            .current_dir(parent)
            .args(["serve", "--data-dir"])
            .arg(Path::new(".").join(name))
            .args(defaults)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawns wallet serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => Ok(Server {
                child: Some(child),
                url,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                Err(StartFailure {
                    code: status.and_then(|s| s.code()),
                    stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                })
            }
        }
    }

    /// Waits for the process to exit by itself; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Option<i32>> {
        let child = self.child.as_mut()?;
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status.code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The process id, for signals.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// kill -9: no chance to flush or finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let status = child.wait().expect("waits");
            assert!(status.success(), "graceful stop exits 0, got {status}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Api {
    pub client: Client,
    pub url: String,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api::at(&server.url)
    }

    pub fn at(url: &str) -> Api {
        Api {
            client: Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            url: url.to_string(),
        }
    }

    /// A token for `role` (an owner for clients).
    pub async fn token(&self, role: &str, owner: Option<&str>) -> String {
        let body = match owner {
            Some(owner) => json!({"role": role, "owner": owner}),
            None => json!({"role": role}),
        };
        let (status, body) = self.post(Some(ADMIN), "/v1/admin/tokens", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("a token").to_string()
    }

    /// Waits until the read models reflect everything applied.
    pub async fn caught_up(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            let (status, body) = self.get(Some(ADMIN), "/v1/cluster/status").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let partition = &body["partitions"][0];
            if partition["applied_index"] == partition["projected_index"] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the read models did not catch up");
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (StatusCode, Value) {
        self.try_post(token, path, body)
            .await
            .expect("request sent")
    }

    /// A POST whose server may not answer (it was killed, say).
    pub async fn try_post(
        &self,
        token: Option<&str>,
        path: &str,
        body: Value,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let mut request = self.client.post(format!("{}{path}", self.url)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Ok(answer(request.send().await?).await)
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.expect("request sent")).await
    }

    pub async fn delete(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut request = self.client.delete(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.expect("request sent")).await
    }

    pub async fn open(&self, account: &str, owner: &str) {
        let body = json!({"account_id": account, "owner": owner});
        let (status, body) = self.post(Some(ADMIN), "/v1/wallet/accounts", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn deposit(&self, account: &str, amount: &str) {
        let body = json!({"account_id": account, "amount": amount, "currency": "USD",
                          "transaction_id": uuid::Uuid::new_v4().to_string()});
        let (status, body) = self.post(Some(ADMIN), "/v1/wallet/deposit", body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn transfer(
        &self,
        from: &str,
        to: &str,
        amount: &str,
        id: &str,
    ) -> (StatusCode, Value) {
        self.try_transfer(from, to, amount, id)
            .await
            .expect("request sent")
    }

    pub async fn try_transfer(
        &self,
        from: &str,
        to: &str,
        amount: &str,
        id: &str,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let body = json!({"from_account": from, "to_account": to, "amount": amount,
                          "currency": "USD", "transaction_id": id});
        self.try_post(Some(ADMIN), "/v1/wallet/balance_transfer", body)
            .await
    }

    /// Available USD in cents.
    pub async fn cents(&self, account: &str) -> i64 {
        let (status, body) = self
            .get(Some(ADMIN), &format!("/v1/wallet/accounts/{account}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        match body["balances"]["USD"]["available"].as_str() {
            Some(amount) => parse_cents(amount),
            None => 0,
        }
    }
}

async fn answer(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The store of a stopped node's data directory, with small caches.
pub fn open_store(data_dir: &Path) -> wallet_host::store::Store {
    let options = wallet_host::store::StoreOptions {
        flush_bytes: 1 << 20,
        cache_bytes: 1 << 20,
        segment_bytes: 1 << 20,
        tuning: wallet_host::rocks::Tuning {
            write_buffer_bytes: 4 << 20,
            write_buffers_max: 4,
            block_cache: wallet_host::rocks::Cache::new_lru_cache(1 << 20),
        },
    };
    wallet_host::store::Store::open(&data_dir.join("partition-0/state"), &options)
        .expect("the store opens")
}

pub fn parse_cents(amount: &str) -> i64 {
    let negative = amount.starts_with('-');
    let digits: String = amount.chars().filter(char::is_ascii_digit).collect();
    let cents: i64 = digits.parse().expect("an amount");
    assert!(amount.contains('.'), "USD amounts carry cents: {amount}");
    if negative { -cents } else { cents }
}

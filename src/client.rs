//! The commands that talk to a running server: `wallet cluster status`,
//! `wallet token create/list/revoke` and `wallet backup`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Which server, and as whom.
#[derive(Args, Clone, Debug)]
pub struct Target {
    /// Base URL of a node.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// Bearer token.
    #[arg(long, env = "WALLET_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A PEM certificate to trust besides the usual roots (a server's
    /// self-signed certificate).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed this once.
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The principal the token acts as; a client token's owner.
        #[arg(long)]
        owner: Option<String>,
        /// Seconds until the token expires (never, by default).
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// Every token: id, role, owner, creation and expiry (never secrets).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Revoke a token by its id.
    Revoke {
        #[command(flatten)]
        target: Target,
        id: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Admin,
    Client,
    Auditor,
}

impl Target {
    fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder().no_proxy();
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build().context("building the HTTP client")
    }

    /// Sends `body` (if any) and returns the status and the JSON answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.target.trim_end_matches('/'));
        let mut request = self.client()?.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("reaching {url}"))?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Like `call`, failing on anything but success.
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let (status, value) = self.call(method, path, body).await?;
        if !status.is_success() {
            bail!("{status}: {value}");
        }
        Ok(value)
    }
}

fn print(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `wallet backup`: the node's backup streamed into the new directory
/// `out`, with a progress line.
pub async fn backup(target: Target, out: PathBuf) -> anyhow::Result<()> {
    let url = format!("{}/v1/admin/backup", target.target.trim_end_matches('/'));
    let mut request = target.client()?.get(&url);
    if let Some(token) = &target.token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("{status}: {text}");
    }
    let bar = ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
        "{spinner} {bytes} received ({binary_bytes_per_sec}, {elapsed})",
    )?);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let manifest =
        wallet_host::backup::receive(response.bytes_stream(), &out, |n| bar.inc(n as u64))
            .await
            .with_context(|| format!("writing the backup to {}", out.display()))?;
    bar.finish();
    print(&json!({
        "backup": out,
        "index": manifest.meta.last_log_id.map_or(0, |id| id.index),
        "events": manifest.events_last,
        "chain_head": manifest.chain_head,
    }))
}

pub async fn status(target: Target) -> anyhow::Result<()> {
    print(&target.ok(Method::GET, "/v1/cluster/status", None).await?)
}

pub async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            target,
            role,
            owner,
            expires_in,
        } => {
            let role = match role {
                RoleArg::Admin => "admin",
                RoleArg::Client => "client",
                RoleArg::Auditor => "auditor",
            };
            let mut body = json!({"role": role});
            if let Some(owner) = owner {
                body["owner"] = json!(owner);
            }
            if let Some(seconds) = expires_in {
                body["expires_in_seconds"] = json!(seconds);
            }
            print(
                &target
                    .ok(Method::POST, "/v1/admin/tokens", Some(body))
                    .await?,
            )
        }
        TokenCommand::List { target } => {
            print(&target.ok(Method::GET, "/v1/admin/tokens", None).await?)
        }
        TokenCommand::Revoke { target, id } => {
            let path = format!("/v1/admin/tokens/{id}");
            print(&target.ok(Method::DELETE, &path, None).await?)
        }
    }
}

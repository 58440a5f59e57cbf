//! The commands that talk to a running server: `wallet cluster status`,
//! `wallet token create/list/revoke`, `wallet sm
//! list/deploy/verify/activate/cancel` and `wallet backup`.

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

#[derive(Subcommand)]
pub enum SmCommand {
    /// Every deployed version: its hash, state (deployed, verified,
    /// scheduled, active, retired), the log index of its deploy entry and
    /// the index it runs from.
    List {
        #[command(flatten)]
        target: Target,
        /// The server's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deploy a component through the log (admin). Refused if it does not
    /// compile, imports anything, implements another contract or fails to
    /// instantiate.
    Deploy {
        #[command(flatten)]
        target: Target,
        /// The component (`.wasm`).
        file: PathBuf,
    },
    /// Replay the member's recorded history through a deployed version,
    /// beside the versions that ran it, and record the outcome in the log
    /// (admin). Exits non-zero when any batch differs.
    Verify {
        #[command(flatten)]
        target: Target,
        /// The version's SHA-256 (hex).
        hash: String,
        /// Where to write the report as JSON.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Replay only the entries after the member's current snapshot,
        /// starting on the state it holds (the log records the window).
        #[arg(long)]
        from_snapshot: bool,
    },
    /// Activate a deployed version through the log (admin): every replica
    /// switches at the same index. Refused unless its last verification
    /// found history identical, or --force gives a reason (recorded).
    Activate {
        #[command(flatten)]
        target: Target,
        /// The version's SHA-256 (hex).
        hash: String,
        /// The first log index it runs (the entry after the activation by
        /// default).
        #[arg(long)]
        at_index: Option<u64>,
        /// Why to activate without an identical verification.
        #[arg(long, value_name = "REASON")]
        force: Option<String>,
    },
    /// Withdraw a version's activation that the log has not reached yet
    /// (one made with --at-index) (admin).
    Cancel {
        #[command(flatten)]
        target: Target,
        /// The version's SHA-256 (hex).
        hash: String,
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
        body: Option<Body>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.target.trim_end_matches('/'));
        let mut request = self.client()?.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        match body {
            Some(Body::Json(body)) => request = request.json(&body),
            Some(Body::Wasm(bytes)) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                    .body(bytes);
            }
            None => {}
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

    /// A successful response to a request without a body, to read as it
    /// streams.
    async fn stream(&self, method: Method, url: &str) -> anyhow::Result<reqwest::Response> {
        let mut request = self.client()?.request(method, url);
        if let Some(token) = &self.token {
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
        Ok(response)
    }

    /// Like `call`, failing on anything but success.
    async fn ok(&self, method: Method, path: &str, body: Option<Body>) -> anyhow::Result<Value> {
        let (status, value) = self.call(method, path, body).await?;
        if !status.is_success() {
            bail!("{status}: {value}");
        }
        Ok(value)
    }
}

/// What a request carries.
enum Body {
    Json(Value),
    Wasm(Vec<u8>),
}

fn print(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `wallet backup`: the node's backup streamed into the new directory
/// `out`, with a progress line.
pub async fn backup(target: Target, out: PathBuf) -> anyhow::Result<()> {
    let url = format!("{}/v1/admin/backup", target.target.trim_end_matches('/'));
    let response = target.stream(Method::GET, &url).await?;
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

#[derive(Args)]
pub struct AddMember {
    #[command(flatten)]
    target: Target,
    /// The new member's node id.
    #[arg(long)]
    id: u64,
    /// HOST:PORT the members reach it at.
    #[arg(long)]
    address: String,
    /// The partitions it takes a replica of, comma-separated.
    #[arg(long, value_delimiter = ',')]
    partitions: Option<Vec<u32>>,
}

pub async fn add_member(args: AddMember) -> anyhow::Result<()> {
    let mut body = json!({"node_id": args.id, "address": args.address});
    if let Some(partitions) = args.partitions {
        body["partitions"] = json!(partitions);
    }
    let answer = args
        .target
        .ok(Method::POST, "/v1/cluster/members", Some(Body::Json(body)))
        .await?;
    print(&answer)
}

#[derive(Args)]
pub struct Move {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    partition: u32,
    /// The member whose replica goes.
    #[arg(long)]
    from: u64,
    /// The member that takes it (a member of the cluster).
    #[arg(long)]
    to: u64,
}

pub async fn move_replica(args: Move) -> anyhow::Result<()> {
    let replicas = format!("/v1/cluster/partitions/{}/replicas", args.partition);
    let body = json!({"node_id": args.to});
    let added = args
        .target
        .ok(Method::POST, &replicas, Some(Body::Json(body)))
        .await
        .with_context(|| format!("giving node {} a replica", args.to))?;
    eprintln!("node {} holds a replica: {added}", args.to);
    let path = format!("{replicas}/{}", args.from);
    let removed = args
        .target
        .ok(Method::DELETE, &path, None)
        .await
        .with_context(|| format!("removing node {}'s replica", args.from))?;
    print(&removed)
}

#[derive(Args)]
pub struct Split {
    #[command(flatten)]
    target: Target,
    /// The partition that splits: the upper half of its hash range goes
    /// to a new partition.
    #[arg(long)]
    partition: u32,
}

pub async fn split(args: Split) -> anyhow::Result<()> {
    let path = format!("/v1/cluster/partitions/{}/split", args.partition);
    let answer = args
        .target
        .ok(Method::POST, &path, None)
        .await
        .with_context(|| format!("splitting partition {}", args.partition))?;
    print(&answer)
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
                    .ok(Method::POST, "/v1/admin/tokens", Some(Body::Json(body)))
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

pub async fn sm(command: SmCommand) -> anyhow::Result<()> {
    match command {
        SmCommand::List { target, json } => {
            let answer = target.ok(Method::GET, "/v1/admin/versions", None).await?;
            if json {
                return print(&answer);
            }
            print_versions(&answer);
            Ok(())
        }
        SmCommand::Deploy { target, file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let body = Some(Body::Wasm(bytes));
            print(&target.ok(Method::POST, "/v1/admin/versions", body).await?)
        }
        SmCommand::Verify {
            target,
            hash,
            report,
            from_snapshot,
        } => verify(target, &hash, from_snapshot, report).await,
        SmCommand::Activate {
            target,
            hash,
            at_index,
            force,
        } => {
            let mut body = json!({});
            if let Some(index) = at_index {
                body["at_index"] = json!(index);
            }
            if let Some(reason) = force {
                body["force_reason"] = json!(reason);
            }
            let path = format!("/v1/admin/versions/{hash}/activate");
            print(
                &target
                    .ok(Method::POST, &path, Some(Body::Json(body)))
                    .await?,
            )
        }
        SmCommand::Cancel { target, hash } => {
            let path = format!("/v1/admin/versions/{hash}/cancel");
            print(&target.ok(Method::POST, &path, None).await?)
        }
    }
}

/// `wallet sm verify`: follows the server's JSON lines with a progress bar,
/// then prints the summary and the differing batches.
async fn verify(
    target: Target,
    hash: &str,
    from_snapshot: bool,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let from = if from_snapshot { "snapshot" } else { "genesis" };
    let url = format!(
        "{}/v1/admin/versions/{hash}/verify?from={from}",
        target.target.trim_end_matches('/')
    );
    let mut response = target.stream(Method::POST, &url).await?;
    let bar = ProgressBar::new(0).with_style(ProgressStyle::with_template(
        "{bar:40} log index {pos}/{len} ({per_sec}, {eta} left)",
    )?);
    let mut pending = Vec::new();
    let mut last = None;
    while let Some(chunk) = response.chunk().await.context("reading the answer")? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let value: Value = serde_json::from_slice(&line).context("an answer line")?;
            if let Some(progress) = value.get("progress") {
                bar.set_length(progress["through"].as_u64().unwrap_or(0));
                bar.set_position(progress["index"].as_u64().unwrap_or(0));
            } else {
                last = Some(value);
            }
        }
    }
    bar.finish_and_clear();
    let answer = last.context("the verification ended without a report")?;
    if answer.get("report").is_none() {
        bail!("the verification failed: {answer}");
    }
    let report = &answer["report"];
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_vec_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let count = |key: &str| report[key].as_u64().unwrap_or(0);
    if from_snapshot && report.get("from").is_none() {
        bail!("the server does not know --from-snapshot: it replayed from genesis");
    }
    println!(
        "{} batches from log index {} through {}: {} identical, {} outcome changed, {} event changed, {} state changed only",
        count("batches"),
        report["from"].as_u64().unwrap_or(1),
        count("through"),
        count("identical"),
        count("outcome_changed"),
        count("event_changed"),
        count("state_changed_only"),
    );
    if count("own_state_writes") > 0 {
        println!(
            "the candidate also wrote {} values under keys of its own (new state, not a difference)",
            count("own_state_writes")
        );
    }
    let empty = Vec::new();
    for difference in report["differences"].as_array().unwrap_or(&empty) {
        println!(
            "index {} ({}):\n  recorded:  {}\n  candidate: {}",
            difference["index"],
            difference["kind"].as_str().unwrap_or("?"),
            difference["recorded"].as_str().unwrap_or("?"),
            difference["candidate"].as_str().unwrap_or("?"),
        );
    }
    match answer.get("recorded_at") {
        Some(position) => println!("recorded in the log at {position}"),
        None => println!("not recorded in the log: {}", answer["message"]),
    }
    if count("identical") != count("batches") {
        bail!("the version differs from recorded history");
    }
    Ok(())
}

/// One line per version: hash, state, deploy index, the index it runs
/// from, and a forced activation's reason.
fn print_versions(answer: &Value) {
    println!(
        "{:<64}  {:<9}  {:>11}  {:>11}  note",
        "hash", "state", "deployed_at", "active_from"
    );
    let empty = Vec::new();
    for version in answer["versions"].as_array().unwrap_or(&empty) {
        let number = |key: &str| version[key].as_u64().map_or("-".into(), |n| n.to_string());
        let note = match (version["forced"].as_str(), &version["verification"]) {
            (Some(reason), _) => format!("forced: {reason}"),
            (None, Value::Object(v)) => format!(
                "verified through {}: {} of {} batches differ",
                v["through"], v["differing"], v["batches"]
            ),
            _ => String::new(),
        };
        println!(
            "{:<64}  {:<9}  {:>11}  {:>11}  {note}",
            version["hash"].as_str().unwrap_or("?"),
            version["state"].as_str().unwrap_or("?"),
            number("deployed_at"),
            number("active_from"),
        );
    }
}

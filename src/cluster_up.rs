//! `wallet cluster up`: a local replicated group of separate `wallet serve`
//! processes on loopback, for trying failover on one machine. It keeps its
//! cluster secret and admin token in the data directory, so a second `up`
//! brings the same group back.

use anyhow::{Context, bail};
use clap::Args;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

/// How long the members may take to answer /healthz.
const START_WAIT: Duration = Duration::from_secs(120);

#[derive(Args)]
pub struct UpArgs {
    /// Members of the group.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Holds each member's data directory, the cluster secret and the
    /// admin token.
    #[arg(long, default_value = "./wallet-cluster")]
    data_dir: PathBuf,
    /// Node i serves HTTP on 127.0.0.1:(base port + i).
    #[arg(long, default_value_t = 8080)]
    base_port: u16,
    /// Partitions (Raft groups) every member runs a replica of.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// How transfers between partitions are coordinated: tcc or saga.
    #[arg(long, value_enum, default_value = "tcc")]
    coordination: crate::Coordination,
}

/// Reads the secret kept in `path`, or writes a new random one there
/// (readable by its owner only).
fn kept_secret(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text.trim().to_string());
    }
    let value = make();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, value.as_bytes())?;
    Ok(value)
}

fn random_hex() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    if !(1..=9).contains(&args.nodes) {
        bail!("--nodes: 1 to 9 members");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let secret_file = args.data_dir.join("cluster-secret");
    kept_secret(&secret_file, random_hex)?;
    let token = match std::env::var("WALLET_ADMIN_TOKEN") {
        Ok(token) if !token.is_empty() => token,
        _ => kept_secret(&args.data_dir.join("admin-token"), random_hex)?,
    };
    let port = |i: u64| u64::from(args.base_port) + i;
    if port(args.nodes) > u64::from(u16::MAX) {
        bail!("--base-port: the ports run past 65535");
    }
    let peers: Vec<String> = (1..=args.nodes)
        .map(|i| format!("{i}=127.0.0.1:{}", port(i)))
        .collect();
    let peers = peers.join(",");
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut children = Vec::new();
    for i in 1..=args.nodes {
        let dir = args.data_dir.join(format!("node-{i}"));
        let log = std::fs::File::create(args.data_dir.join(format!("node-{i}.log")))?;
        let child = Command::new(&exe)
            .arg("serve")
            .args(["--node-id", &i.to_string(), "--peers", &peers])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", &format!("127.0.0.1:{}", port(i))])
            .args(["--partitions", &args.partitions.to_string()])
            .args(["--coordination", args.coordination.name()])
            .arg("--cluster-secret-file")
            .arg(&secret_file)
            .env("WALLET_ADMIN_TOKEN", &token)
            .env_remove("WALLET_CLUSTER_SECRET")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting a member")?;
        children.push((i, child));
    }
    let client = reqwest::Client::builder().no_proxy().build()?;
    let started = Instant::now();
    for i in 1..=args.nodes {
        let url = format!("http://127.0.0.1:{}/healthz", port(i));
        while !client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if started.elapsed() > START_WAIT {
                bail!(
                    "member {i} did not start; see its log in {}",
                    args.data_dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!(
        "a group of {} members on loopback, {} partition(s) each:",
        args.nodes, args.partitions
    );
    for i in 1..=args.nodes {
        println!("  node {i}: http://127.0.0.1:{}", port(i));
    }
    println!("admin token: {token}");
    println!(
        "logs and data in {}; Ctrl-C stops every member",
        args.data_dir.display()
    );
    wait_for_stop(&mut children).await?;
    for (_, child) in &mut children {
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
    }
    for (i, child) in &mut children {
        let status = child.wait().await?;
        println!("node {i} stopped ({status})");
    }
    Ok(())
}

/// Until SIGTERM or Ctrl-C; says so when a member exits on its own (the
/// others keep serving while a majority lives).
async fn wait_for_stop(children: &mut [(u64, Child)]) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut gone = vec![false; children.len()];
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for (k, (i, child)) in children.iter_mut().enumerate() {
            if !gone[k]
                && let Some(status) = child.try_wait()?
            {
                gone[k] = true;
                eprintln!("node {i} exited ({status}); see its log");
            }
        }
    }
}

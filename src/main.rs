mod bench;

use anyhow::Context;
use clap::{Args, Parser};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Wallet: a digital wallet backend whose transfer rules run as a
/// versioned WebAssembly component.
#[derive(Parser)]
#[command(version, about)]
enum Cli {
    /// Run one node: a single-member group with its data in --data-dir.
    Serve(ServeArgs),
    /// Load-generate against a running server and report transfers/s and latency.
    Bench(bench::BenchArgs),
    /// Show a server's leader, members, applied index, chain head and version.
    Status(StatusArgs),
    /// Print the hash of the state-machine release built into this binary.
    Release,
}

#[derive(Args)]
struct ServeArgs {
    /// Where the node keeps its log, state and tokens.
    #[arg(long, default_value = "./wallet-data")]
    data_dir: PathBuf,
    /// HTTP address (port 0 picks a free one; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// This node's id in its group.
    #[arg(long, default_value_t = 1)]
    node_id: u64,
    /// The admin token to create on first start instead of a random one.
    #[arg(long, env = "WALLET_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

#[derive(Args)]
struct StatusArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    #[arg(long, env = "WALLET_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match Cli::parse() {
        Cli::Serve(args) => runtime.block_on(serve(args)),
        Cli::Bench(args) => {
            let json = args.json;
            let report = runtime.block_on(bench::run(args))?;
            print!("{}", report.render(json)?);
            Ok(())
        }
        Cli::Status(args) => runtime.block_on(status(args)),
        Cli::Release => {
            println!("{}", wallet_host::sm::RELEASE_HASH_HEX);
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let options = wallet_host::node::ServeOptions {
        data_dir: args.data_dir,
        listen: args.listen,
        node_id: args.node_id,
        admin_token: args.admin_token,
    };
    wallet_host::node::serve(options).await?;
    Ok(())
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let mut request = reqwest::Client::new().get(format!("{}/v1/cluster/status", args.target));
    if let Some(token) = args.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.context("reaching the server")?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("reading the answer")?;
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

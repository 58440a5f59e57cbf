//! `wallet bench`: a load generator for a running wallet server.
//!
//! It creates and funds a set of accounts (unless `--skip-setup`), then runs
//! `--clients` concurrent tasks that send random transfers between them for
//! `--duration` seconds, and reports transfers/s and request latency. Every
//! random choice (accounts, amounts, hot-account sides) comes from `--seed`,
//! so two runs with the same settings send the same traffic pattern and
//! their numbers can be compared; only the transaction ids are fresh per
//! run, since reused ids would be answered from the idempotency table.

mod api;
mod disk;
mod load;
mod progress;
mod report;
mod rng;
mod setup;
mod workload;

use std::sync::Arc;

pub use report::BenchReport;

use api::Api;
use workload::Plan;

/// Load a running server with random transfers; report transfers/s and latency.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Base URL of the server to load (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,

    /// Bearer token; setup needs an admin token (accounts and deposits).
    #[arg(long, env = "WALLET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,

    /// Seconds of measured load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,

    /// Number of accounts to spread transfers over.
    #[arg(long, default_value_t = 100_000)]
    pub accounts: u64,

    /// Transfers per request: 0 uses the single-transfer endpoint, 1 to 8190
    /// the batch endpoint.
    #[arg(long, default_value_t = 0)]
    pub batch: usize,

    /// Fraction of transfers (0 to 1) that debit or credit one hot account,
    /// to measure contention.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub hot_share: f64,

    /// With --partitions: the fraction of transfers (0 to 1) whose two
    /// accounts are in different partitions; the rest stay in one.
    #[arg(long, value_parser = parse_fraction, requires = "partitions", conflicts_with = "hot_share")]
    pub cross_share: Option<f64>,

    /// The server's partition count, for --cross-share.
    #[arg(long, requires = "cross_share")]
    pub partitions: Option<u32>,

    /// Currency of all deposits and transfers.
    #[arg(long, default_value = "USD")]
    pub currency: String,

    /// Reuse the accounts of an earlier run instead of creating and funding
    /// them.
    #[arg(long)]
    pub skip_setup: bool,

    /// Account ids are `{prefix}-{i}` for i in 0..accounts.
    #[arg(long, default_value = "bench")]
    pub prefix: String,

    /// Seed for every random choice, so runs are repeatable.
    #[arg(long, default_value_t = 0x5EED)]
    pub seed: u64,

    /// Setup requests in flight (each opens or funds up to 8,190 accounts).
    #[arg(long, default_value_t = 4)]
    pub setup_concurrency: usize,

    /// Print the report as JSON (one line) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// The server's process id (Linux, same machine): report the bytes it
    /// wrote to the disk per transfer during the load, from /proc/PID/io.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// Parses a fraction in `[0, 1]`, so a bad `--hot-share` is a usage error.
fn parse_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not between 0 and 1"))
    }
}

/// Sets up accounts (unless `--skip-setup`), runs the load and returns the
/// report; printing is the caller's (see [`BenchReport::render`]).
pub async fn run(args: BenchArgs) -> anyhow::Result<BenchReport> {
    let plan = Arc::new(Plan::from_args(&args)?);
    // One pooled connection per concurrent request, whichever phase has more.
    let pool = plan.clients.max(plan.setup_concurrency);
    let api = Arc::new(Api::new(&args.target, args.token.as_deref(), pool)?);
    let setup = if args.skip_setup {
        None
    } else {
        Some(setup::run(&api, &plan).await?)
    };
    let written_before = args.server_pid.map(disk::write_bytes).transpose()?;
    let (tally, wall) = load::run(&api, &plan).await?;
    let mut report = BenchReport::new(&args.target, &plan, tally, wall, setup);
    if let (Some(pid), Some(before)) = (args.server_pid, written_before) {
        let written = disk::write_bytes(pid)?.saturating_sub(before);
        report.disk_bytes_per_transfer = Some(written as f64 / report.transfers_ok.max(1) as f64);
    }
    Ok(report)
}

impl BenchReport {
    /// The report as `--json` asks: one JSON line, or the table.
    pub fn render(&self, json: bool) -> anyhow::Result<String> {
        if json {
            Ok(self.to_json()? + "\n")
        } else {
            Ok(self.to_string())
        }
    }
}

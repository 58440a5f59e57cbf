mod bench;
mod client;
mod cluster_up;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use wallet_host::audit::Origin;
use wallet_host::cluster::ClusterSecret;
use wallet_host::node::{Holdings, PARTITIONS_MAX, PartitionMap};
use wallet_host::partition::PartitionOptions;
use wallet_host::rocks::Tuning;
use wallet_host::store::StoreOptions;

/// Wallet: a digital wallet backend whose transfer rules run as a
/// versioned WebAssembly component.
#[derive(Parser)]
#[command(version, about)]
enum Cli {
    /// Run one node: alone, a single-member group with its data in
    /// --data-dir; with --peers, one member of a replicated group.
    Serve(Box<ServeArgs>),
    /// Load-generate against a running server and report transfers/s and latency.
    Bench(bench::BenchArgs),
    /// The replica group as a node sees it.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Bearer tokens: create, list, revoke (admin).
    #[command(subcommand)]
    Token(client::TokenCommand),
    /// State-machine versions: list, deploy, verify, activate, cancel.
    #[command(subcommand)]
    Sm(client::SmCommand),
    /// Take a consistent online backup of a running node (admin): its
    /// state, event log and command archive, into a new directory.
    Backup {
        #[command(flatten)]
        target: client::Target,
        /// The directory to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a data directory from a backup, for a single node or, given
    /// the same --peers, for every member of a new group; then `serve` it.
    Restore(RestoreArgs),
    /// Audit a stopped replica's data directory (or a copy) from its raw
    /// history: replay the command archive from genesis, each batch with
    /// the version the log scheduled for it, and check every event record,
    /// the hash chain, the stored components, the double-entry sums and
    /// the read models' balances. Exits non-zero at the first mismatch,
    /// naming it.
    Audit(AuditArgs),
    /// Print the hash of the state-machine release built into this binary.
    Release,
}

#[derive(Args)]
struct AuditArgs {
    #[arg(long, default_value = "./wallet-data")]
    data_dir: PathBuf,
    /// Also print every balance as of this time (RFC 3339, e.g.
    /// 2026-12-03T09:00:00Z): the batches applied at or before it.
    #[arg(long, value_parser = wallet_host::audit::time_ms)]
    at: Option<u64>,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

impl AuditArgs {
    /// Audits every partition the data directory holds, in turn; stops at
    /// the first that fails. The partition count is the one the directory
    /// records (the map the partitions applied their calls by); a
    /// partition split off another since is audited after it, from the
    /// first state its parent's replayed split gives it.
    fn run(self) -> anyhow::Result<()> {
        let dir = |i: u32| self.data_dir.join(format!("partition-{i}"));
        let count = match wallet_host::node::recorded_partitions(&self.data_dir)? {
            Some(count) => count,
            // From before partitions: partition 0 alone.
            None => u32::from(dir(0).is_dir()),
        };
        anyhow::ensure!(
            count > 0,
            "{} holds no partition (is it a data directory?)",
            self.data_dir.display()
        );
        anyhow::ensure!(
            count <= PARTITIONS_MAX,
            "{} records {count} partitions; at most {PARTITIONS_MAX}",
            self.data_dir.display()
        );
        let dirs: Vec<PathBuf> = (0..count).map(dir).collect();
        if let Some(missing) = dirs.iter().find(|dir| !dir.is_dir()) {
            anyhow::bail!(
                "{} records {count} partitions, but {} is missing",
                self.data_dir.display(),
                missing.display()
            );
        }
        let engine = wallet_host::sm::new_engine(None)?;
        let mut audits = Vec::new();
        let map = PartitionMap::new(count);
        let mut births = BTreeMap::new();
        for i in 0.. {
            let origin = match births.remove(&i) {
                _ if i < count => Origin::Genesis(Holdings::new(&map, i)),
                Some(_) if !dir(i).is_dir() => anyhow::bail!(
                    "partition {i} was split off another here, but {} is missing",
                    dir(i).display()
                ),
                Some(birth) => Origin::Split(birth),
                None if dir(i).is_dir() => anyhow::bail!(
                    "{} is a partition split off one whose split this directory does not hold: audit it where its parent's archive is",
                    dir(i).display()
                ),
                None => break,
            };
            let mut audit = wallet_host::audit::audit(&dir(i), origin, &engine, self.at)
                .map_err(|m| anyhow::anyhow!("audit of partition {i} failed: {m}"))?;
            births.extend(audit.births.drain(..).map(|birth| (birth.child, birth)));
            audits.push(audit);
        }
        if self.json {
            // One partition: its report, as before partitions; several: one
            // report per partition, in order.
            let json = match audits.as_slice() {
                [one] => serde_json::to_string_pretty(one)?,
                all => serde_json::to_string_pretty(&serde_json::json!({ "partitions": all }))?,
            };
            println!("{json}");
            return Ok(());
        }
        for (i, audit) in audits.iter().enumerate() {
            if audits.len() > 1 {
                println!("partition {i}:");
            }
            print_audit(audit);
        }
        Ok(())
    }
}

fn print_audit(audit: &wallet_host::audit::Audit) {
    println!(
        "replayed the log through index {}: {} batches, {} commands, {} events; chain head {}",
        audit.through, audit.batches, audit.commands, audit.events, audit.chain_head
    );
    for (version, batches) in &audit.versions {
        println!("  version {version}: {batches} batches");
    }
    for migration in &audit.migrations {
        let (version, index) = (migration.version, migration.index);
        match &migration.failure {
            None => println!(
                "  migration of version {version} before index {index}: {} records written",
                migration.writes
            ),
            Some(why) => println!(
                "  migration of version {version} before index {index} failed, changing nothing: {why}"
            ),
        }
    }
    for (currency, sum) in &audit.sums {
        println!("  {currency}: balances sum to {sum}");
    }
    println!(
        "every event record, the chain, the components and {} accounts' read-model balances agree",
        audit.accounts_compared
    );
    for balance in audit.balances_at.iter().flatten() {
        println!(
            "{} {} available {} reserved {}",
            balance.account, balance.currency, balance.available, balance.reserved
        );
    }
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Start a local group of separate member processes on loopback; print
    /// the endpoints and the admin token; stop them all on Ctrl-C.
    Up(cluster_up::UpArgs),
    /// Leaders, members, applied and projected indexes, chain heads, versions.
    Status(client::Target),
    /// Add a node started with `--join` to the cluster: a replica of the
    /// partitions listed (every one by default; partition 0 always).
    AddMember(client::AddMember),
    /// Move a partition's replica from one member to another while it
    /// serves: the new one a learner, caught up, a voter; then the old one
    /// removed.
    Move(client::Move),
    /// Split a partition while it serves: the upper half of its hash
    /// range, with the accounts in it, goes to a new partition whose
    /// replicas are the parent's.
    Split(client::Split),
}

const MIB: u64 = 1 << 20;

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
    /// Every member of a replicated group, this node included:
    /// `1=HOST:PORT,2=HOST:PORT,3=HOST:PORT`, the HTTP addresses members
    /// reach each other at. A fresh group initializes itself once a
    /// majority is up; a restarted member rejoins from its data directory.
    #[arg(long, value_parser = parse_peers)]
    peers: Option<Peers>,
    /// A new member of a running group: wait to be added by its leader
    /// (`POST /v1/cluster/members`) instead of initializing a group.
    #[arg(long, requires = "peers")]
    join: bool,
    /// The cluster secret every message between members is signed with:
    /// one per line, the first signs and all verify (to rotate: add the new
    /// one second, then move it first, then drop the old). Read again
    /// when the file changes.
    #[arg(long, conflicts_with = "cluster_secret")]
    cluster_secret_file: Option<PathBuf>,
    /// The cluster secret itself, for automation (prefer the file: it can
    /// be rotated without a restart).
    #[arg(long, env = "WALLET_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
    /// The admin token to create on first start instead of a random one.
    #[arg(long, env = "WALLET_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (tokens then cross the
    /// network in clear text).
    #[arg(long)]
    insecure_http: bool,
    /// Refuse writes (507) while less than this is free on the data
    /// directory's filesystem; they resume when space returns.
    #[arg(long, default_value_t = 1024)]
    free_space_floor_mb: u64,
    /// Cache of hot state-machine state.
    #[arg(long, default_value_t = 256)]
    state_cache_mb: u64,
    /// RocksDB block cache, shared by the state and the read models.
    #[arg(long, default_value_t = 256)]
    block_cache_mb: u64,
    /// State written between two flushes. It bounds the replay after a
    /// crash: about 40,000 transfers per 8 MB, replayed at the apply rate.
    #[arg(long, default_value_t = 8)]
    flush_mb: u64,
    /// Size of the Raft log's and event log's segment files.
    #[arg(long, default_value_t = 64)]
    segment_mb: u64,
    /// Log entries between two snapshots. A follower that falls further
    /// behind than the log kept after a snapshot catches up by receiving
    /// one.
    #[arg(long, default_value_t = 100_000)]
    snapshot_entries: u64,
    /// How many partitions, each its own Raft group, the node runs:
    /// accounts are spread over them by a hash of their id. Fixed when the
    /// data directory is created; every member must run the same number.
    /// Without it: as the data directory records, or for a new member
    /// started with --join, as the running members say; else 1.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(wallet_host::node::PARTITIONS_MAX)))]
    partitions: Option<u32>,
    /// How a transfer between two partitions is coordinated: `tcc` (try,
    /// confirm or cancel: the money is reserved until confirmed) or `saga`
    /// (debit, credit, and a refund if the credit is refused).
    #[arg(long, value_enum, default_value = "tcc")]
    coordination: Coordination,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Coordination {
    Tcc,
    Saga,
}

impl Coordination {
    /// As `--coordination` takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coordination::Tcc => "tcc",
            Coordination::Saga => "saga",
        }
    }
}

#[derive(Args)]
struct RestoreArgs {
    /// The backup (`wallet backup --out`).
    #[arg(long)]
    from: PathBuf,
    /// The data directory to make.
    #[arg(long, default_value = "./wallet-data")]
    data_dir: PathBuf,
    /// Every member of the new group (run the restore once per member,
    /// each into its own data directory); without it, a single node, id 1,
    /// at --listen.
    #[arg(long, value_parser = parse_peers)]
    peers: Option<Peers>,
    /// The single node's HTTP address, as it will serve.
    #[arg(long, default_value = "127.0.0.1:8080", conflicts_with = "peers")]
    listen: SocketAddr,
}

impl RestoreArgs {
    fn run(self) -> anyhow::Result<()> {
        let members = match self.peers {
            Some(peers) => peers.0,
            None => BTreeMap::from([(1, self.listen.to_string())]),
        };
        let (store, _) = store_options(8, 64, 64, rocksdb_cache(64 * MIB as usize));
        let log = wallet_host::log::LogOptions::default();
        let manifest =
            wallet_host::backup::restore(&self.from, &self.data_dir, &members, &store, log)
                .with_context(|| format!("restoring {}", self.from.display()))?;
        let summary = serde_json::json!({
            "data_dir": self.data_dir,
            "index": manifest.meta.last_log_id.map_or(0, |id| id.index),
            "events": manifest.events_last,
            "chain_head": manifest.chain_head,
            "members": members,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
        Ok(())
    }
}

/// The state store's options, and the read models' tuning, sharing
/// `block_cache`.
fn store_options(
    flush_mb: u64,
    state_cache_mb: u64,
    segment_mb: u64,
    block_cache: wallet_host::rocks::Cache,
) -> (StoreOptions, Tuning) {
    let store = StoreOptions {
        flush_bytes: mb(flush_mb),
        cache_bytes: mb(state_cache_mb),
        segment_bytes: mb(segment_mb),
        // Four times the flush threshold: RocksDB never fills one by
        // itself (see `wallet_host::store`).
        tuning: Tuning {
            write_buffer_bytes: mb(flush_mb.saturating_mul(4)),
            write_buffers_max: 4,
            block_cache: block_cache.clone(),
        },
    };
    let views = Tuning {
        write_buffer_bytes: mb(64),
        write_buffers_max: 2,
        block_cache,
    };
    (store, views)
}

fn mb(n: u64) -> usize {
    usize::try_from(n.saturating_mul(MIB)).unwrap_or(usize::MAX)
}

/// `--peers`, parsed.
#[derive(Clone)]
struct Peers(BTreeMap<u64, String>);

fn parse_peers(text: &str) -> Result<Peers, String> {
    wallet_host::cluster::parse_peers(text)
        .map(Peers)
        .map_err(|e| e.to_string())
}

impl ServeArgs {
    fn cluster_secret(&self) -> anyhow::Result<Option<ClusterSecret>> {
        Ok(match (&self.cluster_secret_file, &self.cluster_secret) {
            (Some(path), _) => Some(ClusterSecret::from_file(path)?),
            (None, Some(text)) => Some(ClusterSecret::from_text(text)?),
            (None, None) => None,
        })
    }

    fn options(self) -> anyhow::Result<wallet_host::node::ServeOptions> {
        let cluster_secret = self.cluster_secret()?;
        let block_cache = rocksdb_cache(mb(self.block_cache_mb));
        let (store, views) = store_options(
            self.flush_mb,
            self.state_cache_mb,
            self.segment_mb,
            block_cache,
        );
        Ok(wallet_host::node::ServeOptions {
            data_dir: self.data_dir,
            listen: self.listen,
            node_id: self.node_id,
            admin_token: self.admin_token,
            tls: self.tls_cert.zip(self.tls_key),
            insecure_http: self.insecure_http,
            free_space_floor_bytes: self.free_space_floor_mb.saturating_mul(MIB),
            partition: PartitionOptions {
                store,
                log_segment_bytes: mb(self.segment_mb),
                views,
                snapshot_every: self.snapshot_entries,
            },
            peers: self.peers.map(|p| p.0).unwrap_or_default(),
            cluster_secret,
            join: self.join,
            partitions: self.partitions,
            coordination: match self.coordination {
                Coordination::Tcc => wallet_host::coordinator::Mode::Tcc,
                Coordination::Saga => wallet_host::coordinator::Mode::Saga,
            },
        })
    }
}

/// mimalloc rather than the C library's malloc: the request path allocates
/// small, short-lived buffers from many threads, which mimalloc serves with
/// less CPU (8 to 18% more transfers/s in `wallet bench`), for about a
/// fifth more resident memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rocksdb_cache(bytes: usize) -> wallet_host::rocks::Cache {
    wallet_host::rocks::Cache::new_lru_cache(bytes)
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
        Cli::Serve(args) => runtime.block_on(async {
            wallet_host::node::serve(args.options()?).await?;
            Ok(())
        }),
        Cli::Bench(args) => {
            let json = args.json;
            let report = runtime.block_on(bench::run(args))?;
            print!("{}", report.render(json)?);
            Ok(())
        }
        Cli::Cluster(ClusterCommand::Up(args)) => runtime.block_on(cluster_up::up(args)),
        Cli::Cluster(ClusterCommand::Status(target)) => runtime.block_on(client::status(target)),
        Cli::Cluster(ClusterCommand::AddMember(args)) => runtime.block_on(client::add_member(args)),
        Cli::Cluster(ClusterCommand::Move(args)) => runtime.block_on(client::move_replica(args)),
        Cli::Cluster(ClusterCommand::Split(args)) => runtime.block_on(client::split(args)),
        Cli::Token(command) => runtime.block_on(client::token(command)),
        Cli::Sm(command) => runtime.block_on(client::sm(command)),
        Cli::Backup { target, out } => runtime.block_on(client::backup(target, out)),
        Cli::Restore(args) => args.run(),
        Cli::Audit(args) => args.run(),
        Cli::Release => {
            println!("{}", wallet_host::sm::RELEASE_HASH_HEX);
            Ok(())
        }
    }
}

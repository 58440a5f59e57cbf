use crate::sm::VersionHash;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "state machine component refused: it imports {imports:?}; a state machine may import nothing (no WASI: no clock, randomness, filesystem or environment)"
    )]
    ForbiddenImports { imports: Vec<String> },

    #[error(
        "state machine version {hash} implements {}, not the contract this build runs ({})",
        found.as_deref().unwrap_or("no wallet:statemachine contract"),
        wallet_core::CONTRACT
    )]
    UnsupportedContract {
        hash: VersionHash,
        found: Option<String>,
    },

    #[error(
        "this data directory was written under contract {found}; this build runs {} only and refuses to run it with other rules (move the directory aside to start afresh, or run the release that wrote it)",
        wallet_core::CONTRACT
    )]
    OtherContract { found: String },

    #[error("state machine component does not compile or link: {0:#}")]
    Component(wasmtime::Error),

    #[error("state machine version {0} is not known")]
    UnknownVersion(VersionHash),

    #[error("no state machine version is active at log index {0}")]
    NoActiveVersion(u64),

    #[error("state read failed while executing a batch: {0}")]
    StateRead(String),

    #[error("the state store failed: {0}")]
    StoreFailed(String),

    #[error("the state machine instance was lost after a failed batch")]
    InstanceLost,

    #[error("sandbox engine: {0:#}")]
    Engine(wasmtime::Error),

    #[error("log I/O on {}: {source}", path.display())]
    LogIo {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    #[error("log data at {} offset {offset} is corrupt: {why}", path.display())]
    LogCorrupt {
        path: std::path::PathBuf,
        offset: u64,
        why: String,
    },

    #[error("log index {got} refused: the next index is {expected}")]
    LogIndex { expected: u64, got: u64 },

    #[error("record of {bytes} bytes is over the limit of {limit}")]
    RecordTooLarge { bytes: usize, limit: usize },

    #[error("log record {index} is empty; a record holds at least one byte")]
    LogRecordEmpty { index: u64 },

    #[error("log truncation from {index} refused: records up to {purged} are purged, so committed")]
    LogTruncatePurged { index: u64, purged: u64 },

    #[error("log segment size of {bytes} bytes is outside {min}..={max}")]
    LogSegmentSize {
        bytes: usize,
        min: usize,
        max: usize,
    },

    #[error("log directory {} is in use by another process", path.display())]
    LogLocked { path: std::path::PathBuf },

    #[error("log at {} is unusable after a failed write or flush; reopen it", path.display())]
    LogPoisoned { path: std::path::PathBuf },

    #[error("raft: {0}")]
    Raft(String),

    #[error("RocksDB {context}: {source}")]
    Rocks {
        context: &'static str,
        source: rocksdb::Error,
    },

    #[error("store at {} has no column family `{name}`; refusing to open it", path.display())]
    MissingColumnFamily {
        path: std::path::PathBuf,
        name: &'static str,
    },

    #[error("store value in column family `{cf}` is corrupt: {why}")]
    CorruptValue { cf: &'static str, why: String },

    #[error("event hash chain broken at record {seq}: expected {expected}, found {found}")]
    ChainMismatch {
        seq: u64,
        expected: String,
        found: String,
    },

    #[error(
        "event log ends at record {log_last:?} but the store committed up to record {committed}; records are missing"
    )]
    EventLogBehind {
        committed: u64,
        log_last: Option<u64>,
    },

    #[error(
        "event log record {seq} was made again from the Raft log and differs from the one held (held hashes to {held}, made to {made}): this replica diverged"
    )]
    EventLogDiverged {
        seq: u64,
        held: String,
        made: String,
    },

    #[error(
        "this replica was fenced: its event chain differed from its group's at record {seq} (the verdict is in {}); it stays out of the group: remove it from the group, move its data directory aside, and add it again with --join to copy the group's state",
        path.display()
    )]
    Diverged { path: std::path::PathBuf, seq: u64 },

    #[error(
        "the command archive lacks entries {from} to {to}: this replica was installed from a snapshot without them; audit a member that holds them"
    )]
    ArchiveGap { from: u64, to: u64 },

    #[error("the migration of version {version} failed: {failure}")]
    MigrationFailed {
        version: VersionHash,
        failure: String,
    },

    #[error("this replica holds no snapshot yet to start a verification at")]
    NoSnapshot,

    #[error("no entry was applied after the snapshot at index {snapshot}: the window is empty")]
    EmptyWindow { snapshot: u64 },

    #[error("event log starts at record {first}, not at genesis (record 1); it cannot be verified")]
    EventLogNotFromGenesis { first: u64 },

    #[error("balance of {account} in {currency} leaves the signed 64-bit range")]
    BalanceOverflow { account: String, currency: String },

    #[error("token file {}: {source}", path.display())]
    TokenFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    #[error("token file {} is corrupt: {why}", path.display())]
    TokenFileCorrupt {
        path: std::path::PathBuf,
        why: String,
    },

    #[error("token refused: {0}")]
    TokenRefused(String),

    #[error("serving HTTP on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },

    #[error("TLS file {}: {why}", path.display())]
    Tls {
        path: std::path::PathBuf,
        why: String,
    },

    #[error(
        "refusing to serve plain HTTP on {address}: bearer tokens would cross the network in clear text; give --tls-cert and --tls-key, or --insecure-http to accept that"
    )]
    InsecureListen { address: String },

    #[error("--partitions: {0}")]
    Partitions(String),

    #[error(
        "the history to verify holds a split at index {index}; verifying across a split is not built yet (verify from a snapshot taken after it)"
    )]
    SplitInWindow { index: u64 },

    #[error("the node stopped: {0}")]
    Stopped(String),

    #[error("cluster secret: {0}")]
    ClusterSecret(String),

    #[error("--peers: {0}")]
    Peers(String),

    #[error("peer network: {0}")]
    PeerNetwork(String),

    #[error("metrics recorder: {0}")]
    Metrics(String),

    #[error("data directory {}: {source}", path.display())]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

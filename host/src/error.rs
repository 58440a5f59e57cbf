use crate::sm::VersionHash;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "state machine component refused: it imports {imports:?}; only the wallet interfaces (wallet:statemachine/*) may be imported"
    )]
    ForbiddenImports { imports: Vec<String> },

    #[error("state machine component does not compile or link: {0:#}")]
    Component(wasmtime::Error),

    #[error("state machine version {0} is not known")]
    UnknownVersion(VersionHash),

    #[error("batch of {commands} commands is over the limit of {limit}")]
    BatchTooLarge { commands: usize, limit: usize },

    #[error("state read failed while executing a batch: {0}")]
    StateRead(String),

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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

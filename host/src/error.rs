use crate::sm::VersionHash;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state machine component refused: it imports {imports:?}; only the wallet interfaces (wallet:statemachine/*) may be imported")]
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

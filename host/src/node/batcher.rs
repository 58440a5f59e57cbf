//! Group commit in front of Raft: requests queue here; whenever a slot for a
//! batch in flight is free, everything queued (up to the batch limit)
//! becomes one log entry. Under load, batches grow by themselves; alone, a
//! request goes out at once. Each request gets its own replies back.

use crate::raft::{CommandBatch, Raft};
use crate::service::{Reply, SubmitError};
use crate::sm::{Command, VersionHash, limits};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Entries replicating at once; more requests wait and join later batches.
pub const BATCHES_IN_FLIGHT_MAX: usize = 4;
/// Commands waiting for a batch before new requests are refused (429).
pub const QUEUED_COMMANDS_MAX: usize = 200_000;

type Replies = Result<Vec<Reply>, SubmitError>;

struct Job {
    commands: Vec<Command>,
    reply: oneshot::Sender<Replies>,
}

#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
    queued: Arc<AtomicUsize>,
}

impl Batcher {
    pub fn start(raft: Raft, version: VersionHash) -> Batcher {
        let (jobs, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(raft, version, rx, queued.clone()));
        Batcher { jobs, queued }
    }

    pub async fn submit(&self, commands: Vec<Command>) -> Replies {
        assert!(
            commands.len() <= limits::BATCH_COMMANDS_MAX,
            "the edge bounds requests"
        );
        let count = commands.len();
        let queued = self.queued.fetch_add(count, Ordering::Relaxed);
        if queued + count > QUEUED_COMMANDS_MAX {
            self.queued.fetch_sub(count, Ordering::Relaxed);
            return Err(SubmitError::Overloaded {
                queued,
                limit: QUEUED_COMMANDS_MAX,
            });
        }
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { commands, reply }).is_err() {
            self.queued.fetch_sub(count, Ordering::Relaxed);
            return Err(SubmitError::ShuttingDown);
        }
        answer.await.unwrap_or(Err(SubmitError::ShuttingDown))
    }
}

async fn run(
    raft: Raft,
    version: VersionHash,
    mut rx: mpsc::UnboundedReceiver<Job>,
    queued: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    let mut carried: Option<Job> = None;
    let mut last_ms = 0;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut jobs = vec![first];
        let mut count = jobs[0].commands.len();
        while let Ok(job) = rx.try_recv() {
            if count + job.commands.len() > limits::BATCH_COMMANDS_MAX {
                carried = Some(job);
                break;
            }
            count += job.commands.len();
            jobs.push(job);
        }
        queued.fetch_sub(count, Ordering::Relaxed);
        last_ms = last_ms.max(now_ms());
        let raft = raft.clone();
        tokio::spawn(async move {
            replicate(&raft, version, last_ms, jobs).await;
            drop(slot);
        });
    }
}

/// Replicates one batch and hands every job its slice of the replies.
async fn replicate(raft: &Raft, version: VersionHash, timestamp_ms: u64, jobs: Vec<Job>) {
    let mut commands = Vec::with_capacity(jobs.iter().map(|j| j.commands.len()).sum());
    let mut replies_to = Vec::with_capacity(jobs.len());
    for job in jobs {
        replies_to.push((job.commands.len(), job.reply));
        commands.extend(job.commands);
    }
    let batch = CommandBatch {
        timestamp_ms,
        version,
        commands,
    };
    match raft.client_write(batch).await {
        Ok(written) => {
            let mut replies = written.data.replies.into_iter();
            for (count, reply) in replies_to {
                let _ = reply.send(Ok(replies.by_ref().take(count).collect()));
            }
        }
        Err(error) => {
            let error = submit_error(error);
            for (_, reply) in replies_to {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

fn submit_error(error: RaftError<u64, ClientWriteError<u64, openraft::BasicNode>>) -> SubmitError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => SubmitError::NotLeader {
            leader: forward.leader_node.map(|n| n.addr),
        },
        RaftError::APIError(other) => SubmitError::Internal(other.to_string()),
        RaftError::Fatal(fatal) => {
            tracing::error!(%fatal, "raft stopped");
            SubmitError::ShuttingDown
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

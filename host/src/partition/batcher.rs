//! Group commit in front of Raft: requests queue here; whenever a slot for a
//! batch in flight is free, everything queued (up to the batch limit)
//! becomes one log entry. Under load, batches grow by themselves; alone, a
//! request goes out at once. Each request gets its own replies back, with
//! the position its batch was applied at.

use crate::raft::{BatchReply, CommandBatch, HomedBatch, Raft, Request};
use crate::service::{Position, Reply, SubmitError, Submitted};
use crate::sm::limits;
use crate::store::Store;
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, mpsc, oneshot};
use wallet_core::codec::Calls;

/// Entries replicating at once; more requests wait and join later batches.
pub const BATCHES_IN_FLIGHT_MAX: usize = 1;
/// Commands waiting for a batch before new requests are refused (429).
pub const QUEUED_COMMANDS_MAX: usize = 200_000;
/// A leader that heard from no majority for this long refuses writes
/// rather than queue them behind entries it may never commit.
const QUORUM_SILENCE_MAX_MS: u64 = 1_000;
/// How long a batch may take to commit and apply before its requests are
/// answered 503 (the batch may still commit: a retry with the same
/// transaction ids is answered from the first outcome).
const COMMIT_WAIT_MAX: Duration = Duration::from_secs(5);

type Answer = Result<Submitted, SubmitError>;

struct Job {
    calls: Calls,
    /// A coordinator's steps: the account every call acts on.
    home: Option<String>,
    reply: oneshot::Sender<Answer>,
}

#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
    queued: Arc<AtomicUsize>,
}

impl Batcher {
    /// Starts batching for `raft`; `store` says the last applied batch's
    /// time, below which the leader never stamps.
    pub fn start(raft: Raft, store: Arc<Store>, partition: u32) -> Batcher {
        let (jobs, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let stamper = Stamper { store, last_ms: 0 };
        tokio::spawn(run(raft, stamper, partition, rx, queued.clone()));
        Batcher { jobs, queued }
    }

    /// Queues `calls` for the next batch; `home`: they are a coordinator's
    /// steps, each acting on that account.
    pub async fn submit(&self, calls: Calls, home: Option<String>) -> Answer {
        let count = calls.len();
        if count == 0 || count > limits::BATCH_COMMANDS_MAX {
            return Err(SubmitError::Internal(format!(
                "a submission of {count} commands; 1 to {} allowed",
                limits::BATCH_COMMANDS_MAX
            )));
        }
        let queued = self.queued.fetch_add(count, Ordering::Relaxed);
        if queued + count > QUEUED_COMMANDS_MAX {
            self.queued.fetch_sub(count, Ordering::Relaxed);
            return Err(SubmitError::Overloaded {
                queued,
                limit: QUEUED_COMMANDS_MAX,
            });
        }
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { calls, home, reply }).is_err() {
            self.queued.fetch_sub(count, Ordering::Relaxed);
            return Err(SubmitError::ShuttingDown);
        }
        answer.await.unwrap_or(Err(SubmitError::ShuttingDown))
    }
}

/// The leader's stamps: never below the last one it made, nor below the
/// last applied batch's time (which a previous leader may have set ahead
/// of this node's clock).
struct Stamper {
    store: Arc<Store>,
    last_ms: u64,
}

impl Stamper {
    fn next(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last_ms = self.last_ms.max(now).max(self.store.timestamp_ms());
        self.last_ms
    }
}

async fn run(
    raft: Raft,
    mut stamper: Stamper,
    partition: u32,
    mut rx: mpsc::UnboundedReceiver<Job>,
    queued: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    let mut carried: Option<Job> = None;
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
        let mut count = first.calls.len();
        let mut jobs = vec![first];
        while let Ok(job) = rx.try_recv() {
            if count + job.calls.len() > limits::BATCH_COMMANDS_MAX {
                carried = Some(job);
                break;
            }
            count += job.calls.len();
            jobs.push(job);
        }
        queued.fetch_sub(count, Ordering::Relaxed);
        let timestamp_ms = stamper.next();
        let raft = raft.clone();
        tokio::spawn(async move {
            replicate(&raft, partition, timestamp_ms, jobs).await;
            drop(slot);
        });
    }
}

/// Replicates one batch and hands every job its slice of the replies.
async fn replicate(raft: &Raft, partition: u32, timestamp_ms: u64, jobs: Vec<Job>) {
    let bytes = jobs.iter().map(|j| j.calls.byte_len()).sum();
    let mut calls = Calls::with_capacity(bytes);
    let mut replies_to = Vec::with_capacity(jobs.len());
    let mut homes = Vec::new();
    for job in jobs {
        if let Some(home) = &job.home {
            let first = calls.len() as u32;
            homes.extend((first..first + job.calls.len() as u32).map(|i| (i, home.clone())));
        }
        calls.append(&job.calls);
        replies_to.push((job.calls.len(), job.reply));
    }
    let batch = CommandBatch {
        timestamp_ms,
        calls: calls.into_bytes(),
    };
    let request = match homes.is_empty() {
        true => Request::Batch(batch),
        false => Request::Homed(HomedBatch { batch, homes }),
    };
    match write(raft, request).await {
        Ok(written) => {
            let BatchReply { index, replies, .. } = written;
            let position = Position { partition, index };
            let mut replies = replies.into_iter();
            for (count, reply) in replies_to {
                let mine: Vec<Reply> = replies.by_ref().take(count).collect();
                let answer = if mine.len() == count {
                    Ok(Submitted {
                        replies: mine,
                        position,
                    })
                } else {
                    Err(SubmitError::Internal(format!(
                        "{count} commands submitted, {} replies",
                        mine.len()
                    )))
                };
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            for (_, reply) in replies_to {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// Proposes one entry as the leader and waits for it to be applied; refused
/// at once when this leader has heard from no majority for a while, and
/// given up (it may still commit) after a bounded wait.
pub(super) async fn write(raft: &Raft, request: Request) -> Result<BatchReply, SubmitError> {
    let silent_ms = raft
        .metrics()
        .borrow()
        .millis_since_quorum_ack
        .filter(|&ms| ms > QUORUM_SILENCE_MAX_MS);
    if let Some(ms) = silent_ms {
        return Err(SubmitError::NoQuorum(format!(
            "this leader has heard from no majority for {ms} ms"
        )));
    }
    match tokio::time::timeout(COMMIT_WAIT_MAX, raft.client_write(request)).await {
        Ok(written) => written.map(|w| w.data).map_err(submit_error),
        Err(_) => Err(SubmitError::NoQuorum(format!(
            "the entry did not commit within {} s",
            COMMIT_WAIT_MAX.as_secs()
        ))),
    }
}

fn submit_error(error: RaftError<u64, ClientWriteError<u64, openraft::BasicNode>>) -> SubmitError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => SubmitError::NotLeader {
            leader: forward.leader_node.map(|n| n.addr),
        },
        RaftError::APIError(other) => SubmitError::Internal(other.to_string()),
        RaftError::Fatal(fatal) => SubmitError::Stopped(fatal.to_string()),
    }
}

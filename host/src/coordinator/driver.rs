//! Runs cross-partition transfers: each step through the leader of the
//! partition it runs in, again after a pause while it goes undelivered,
//! until the plan is done. A transfer is driven once per node at a time;
//! a second request for it waits for the first's outcome.

use super::journal::InFlight;
use super::plan::{Answer, Mode, Side, Stage};
use crate::service::{Position, Reply, SubmitError};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use wallet_core::principal::{Role, SYSTEM_PRINCIPAL};
use wallet_core::{Call, Caller, Reason};

/// The first pause before a step is sent again; it doubles up to
/// `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the coordinator needs of the node: the partitions' leaders, and
/// the source's log time.
pub trait Partitions: Send + Sync + 'static {
    /// Runs calls in `partition`, in one batch, through its leader; each
    /// acts on `home`, which the partition must hold.
    fn run(
        &self,
        partition: u32,
        home: &str,
        calls: Vec<Call<String>>,
    ) -> impl Future<Output = Result<(Vec<Reply>, Position), SubmitError>> + Send;

    /// The partition holding `account`.
    fn partition_of(&self, account: &str) -> u32;

    /// The time of the last batch `partition` applied here.
    fn log_time_ms(&self, partition: u32) -> u64;

    /// Closes a finished transfer in `partition`'s journal (with others
    /// that finish meanwhile, in one entry).
    fn finish(
        &self,
        partition: u32,
        id: u128,
    ) -> impl Future<Output = Result<Position, SubmitError>> + Send;
}

/// The outcome of a driven transfer, and where each partition wrote it.
pub type Driven = (Result<(), Reason>, Vec<Position>);

struct Driving {
    stage: Stage,
    since: Instant,
    done: watch::Receiver<Option<Driven>>,
}

/// The transfers this node coordinates now.
pub struct Coordinator {
    mode: Mode,
    deadline_ms: u64,
    driving: Mutex<HashMap<u128, Driving>>,
}

/// In-flight counts per stage, and the age of the oldest.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub stages: BTreeMap<String, u64>,
    pub oldest_ms: u64,
}

impl Coordinator {
    /// `deadline`: how long, in the source's log time, a placeholder may
    /// stay undelivered before a TC/C transfer is cancelled.
    pub fn new(mode: Mode, deadline: Duration) -> Coordinator {
        Coordinator {
            mode,
            deadline_ms: deadline.as_millis() as u64,
            driving: Mutex::default(),
        }
    }

    /// The mode new transfers start in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn stats(&self) -> Stats {
        let driving = self.driving.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stats = Stats::default();
        for d in driving.values() {
            *stats.stages.entry(d.stage.name().into()).or_default() += 1;
            stats.oldest_ms = stats.oldest_ms.max(d.since.elapsed().as_millis() as u64);
        }
        stats
    }

    /// Whether this node drives `id` now.
    pub fn is_driving(&self, id: u128) -> bool {
        let driving = self.driving.lock().unwrap_or_else(PoisonError::into_inner);
        driving.contains_key(&id)
    }

    /// Drives `record`, whose try its source accepted, to its end; or, if
    /// this node drives it already, waits for that. `None` if the driver
    /// stopped without an outcome (the journal still holds the transfer).
    pub async fn drive<P: Partitions>(
        self: &Arc<Self>,
        parts: &Arc<P>,
        record: InFlight,
    ) -> Option<Driven> {
        let mut done = self.start(parts, record);
        let driven = done.wait_for(Option::is_some).await.ok()?;
        driven.clone()
    }

    /// Starts driving `record` in a task of its own, unless this node
    /// drives it already: a request that goes away (a client that gave up)
    /// does not stop a transfer halfway.
    fn start<P: Partitions>(
        self: &Arc<Self>,
        parts: &Arc<P>,
        record: InFlight,
    ) -> watch::Receiver<Option<Driven>> {
        let mut driving = self.driving.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = driving.get(&record.id) {
            return d.done.clone();
        }
        let (done, waiting) = watch::channel(None);
        driving.insert(
            record.id,
            Driving {
                stage: Stage::start(record.mode),
                since: Instant::now(),
                done: waiting.clone(),
            },
        );
        let (coordinator, parts) = (Arc::clone(self), Arc::clone(parts));
        tokio::spawn(async move {
            let driven = coordinator.run(&*parts, &record).await;
            coordinator
                .driving
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&record.id);
            done.send_replace(Some(driven));
        });
        waiting
    }

    /// The source is looked up at every send, as the destination is: a
    /// split may move it, and its journal record with it, to a new
    /// partition, whose leader resumes the transfer too (every step is
    /// idempotent).
    async fn run<P: Partitions>(&self, parts: &P, record: &InFlight) -> Driven {
        let transfer = record.transfer();
        let mut positions: BTreeMap<u32, u64> = BTreeMap::new();
        let mut stage = Stage::start(record.mode);
        let mut backoff = BACKOFF_MIN;
        let outcome = loop {
            let Some((side, commands)) = stage.send(&transfer) else {
                let Stage::Done(outcome) = stage else {
                    unreachable!("only a finished plan has no step")
                };
                break outcome;
            };
            // The destination is looked up at every send: a step the map
            // sent to a partition that no longer holds the account is
            // answered `Moved`, and sent again where it now is.
            let (partition, home) = match side {
                Side::Source => (parts.partition_of(&record.from), &record.from),
                Side::Destination => (parts.partition_of(&record.to), &record.to),
            };
            let expected = commands.len();
            let calls = commands
                .into_iter()
                .map(|command| Call {
                    caller: Caller {
                        role: Role::System,
                        principal: SYSTEM_PRINCIPAL.to_owned(),
                    },
                    command,
                })
                .collect();
            let answers: Vec<Answer> = match parts.run(partition, home, calls).await {
                Ok((replies, position)) if replies.len() == expected => {
                    if let Some(Reply::Failed(failure)) =
                        replies.iter().find(|r| matches!(r, Reply::Failed(_)))
                    {
                        tracing::warn!(id = %uuid::Uuid::from_u128(record.id), partition, %failure, "a step's batch failed; it is sent again");
                    }
                    let index = positions.entry(position.partition).or_default();
                    *index = (*index).max(position.index);
                    replies
                        .into_iter()
                        .map(|reply| match reply {
                            Reply::Accepted => Answer::Accepted,
                            Reply::Rejected(reason) => Answer::Rejected(reason),
                            Reply::Failed(_) | Reply::Moved => Answer::Undelivered,
                        })
                        .collect()
                }
                Ok((replies, _)) => {
                    tracing::warn!(id = %uuid::Uuid::from_u128(record.id), partition, replies = replies.len(), expected, "a step got the wrong number of replies; it is sent again");
                    vec![Answer::Undelivered]
                }
                Err(error) => {
                    tracing::warn!(id = %uuid::Uuid::from_u128(record.id), partition, stage = stage.name(), %error, "a step went unanswered; it is sent again");
                    vec![Answer::Undelivered]
                }
            };
            let source = parts.partition_of(&record.from);
            let expired =
                parts.log_time_ms(source) >= record.started_ms.saturating_add(self.deadline_ms);
            let next = stage.answered(&answers, expired);
            if answers.contains(&Answer::Undelivered) {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            } else {
                backoff = BACKOFF_MIN;
            }
            self.set_stage(record.id, next);
            stage = next;
        };
        if record.mode == Mode::Saga && outcome.is_ok() {
            // Nothing at the source closes a saga that succeeded: an entry
            // does. If it is not written, the next leader drives the saga
            // again (every step answers as before) and writes it.
            let source = parts.partition_of(&record.from);
            if let Ok(position) = parts.finish(source, record.id).await {
                let index = positions.entry(position.partition).or_default();
                *index = (*index).max(position.index);
            }
        }
        let positions = positions
            .into_iter()
            .map(|(partition, index)| Position { partition, index })
            .collect();
        (outcome, positions)
    }

    fn set_stage(&self, id: u128, stage: Stage) {
        let mut driving = self.driving.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = driving.get_mut(&id) {
            d.stage = stage;
        }
    }

    /// Drives, in the background, every transfer of `records` this node
    /// does not drive yet: those a previous leader of `source` left.
    pub fn resume<P: Partitions>(
        self: &Arc<Self>,
        parts: &Arc<P>,
        source: u32,
        records: Vec<InFlight>,
    ) {
        for record in records {
            if !self.is_driving(record.id) {
                tracing::info!(id = %uuid::Uuid::from_u128(record.id), source, "resuming a cross-partition transfer");
                self.start(parts, record);
            }
        }
    }
}

//! Divergence detection: replicas compare their event-chain heads.
//!
//! Every replica makes the same event records, in the same order, from the
//! same log, so the chain head after record `seq` is the same on every
//! honest replica. Once a second the leader asks each voter for its head at
//! its last record and at the records still in question, and compares them
//! with its own. Where a majority of the voters agree on a record's head,
//! a voter holding another head has diverged (a disk that changed a byte,
//! a host that executed differently): it is fenced. The leader fences
//! itself when it is the one in the minority, and its group elects another.
//!
//! A fenced replica stops its Raft (so it applies, votes and leads no
//! more), refuses reads and writes, and says why in its log, its metrics
//! (`replica_diverged`) and `GET /v1/cluster/status`. The verdict is kept in
//! `diverged.json` in the partition's directory, so a restart does not
//! bring it back; the operator replaces the member (see the README).

use super::Partition;
use crate::cluster::{Peers, Rpc};
use crate::log::{read_small, write_atomic};
use crate::raft::Answer;
use crate::store::chain_next;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

/// The verdict's file, in the partition's directory.
pub const DIVERGED_FILE: &str = "diverged.json";
/// How often the leader compares heads.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a voter may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// Records still in question, asked about again in the next round.
const QUESTIONS_MAX: usize = 16;

/// Where a replica's chain differs from its group's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The event record (its sequence number) whose head differs.
    pub seq: u64,
    /// The head this replica holds there, in hex.
    pub held: String,
    /// The head a majority of the voters hold there, in hex.
    pub majority: String,
}

/// The leader's question: heads at these records; and, for a replica
/// found in the minority, the verdict.
#[derive(Debug, Serialize, Deserialize)]
pub struct HeadsRequest {
    pub leader: u64,
    pub seqs: Vec<u64>,
    pub fence: Option<Divergence>,
}

/// Heads at the asked records this replica holds, and at its last one.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Heads(pub BTreeMap<u64, [u8; 32]>);

/// The chain head after record `seq`, if this replica holds it.
fn head_at(partition: &Partition, seq: u64) -> Result<Option<[u8; 32]>> {
    partition.store.event_log().with_record(seq, chain_next)
}

impl Partition {
    /// This replica's heads at `seqs` and at its last record.
    fn heads(&self, seqs: impl IntoIterator<Item = u64>) -> Result<Heads> {
        let last = self.store.event_log().last();
        let mut heads = BTreeMap::new();
        for seq in seqs.into_iter().chain((last > 0).then_some(last)) {
            if let Some(head) = head_at(self, seq)? {
                heads.insert(seq, head);
            }
        }
        Ok(Heads(heads))
    }

    /// Answers the leader; takes its verdict when this replica's own chain
    /// confirms it and the verdict comes from the leader it follows.
    pub fn answer_heads(&self, request: HeadsRequest) -> Answer<Heads> {
        if let Some(verdict) = request.fence {
            let leader = self.raft.metrics().borrow().current_leader;
            let held = head_at(self, verdict.seq).map_err(|e| e.to_string())?;
            let confirmed = held.is_some_and(|h| {
                hex::encode(h) == verdict.held && verdict.held != verdict.majority
            });
            if leader == Some(request.leader) && confirmed {
                self.fence(verdict);
            }
        }
        self.heads(request.seqs).map_err(|e| e.to_string())
    }

    /// The verdict, if this replica is fenced.
    pub fn diverged(&self) -> Option<Divergence> {
        self.fenced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fences this replica: keeps the verdict, then stops its Raft.
    pub fn fence(&self, verdict: Divergence) {
        let mut fenced = self
            .fenced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if fenced.is_some() {
            return;
        }
        tracing::error!(
            partition = self.id,
            seq = verdict.seq,
            held = %verdict.held,
            majority = %verdict.majority,
            "this replica's event chain differs from the majority's: fenced (it applies, \
             votes and serves no more; replace the member)"
        );
        let bytes = serde_json::to_vec_pretty(&verdict).expect("verdicts serialize");
        if let Err(error) = write_atomic(&self.dir.join(DIVERGED_FILE), &bytes) {
            tracing::error!(%error, "keeping the divergence verdict");
        }
        metrics::gauge!("replica_diverged").set(1.0);
        *fenced = Some(verdict);
        let raft = self.raft.clone();
        tokio::spawn(async move {
            if let Err(error) = raft.shutdown().await {
                tracing::warn!(%error, "stopping raft after a divergence");
            }
        });
    }
}

/// Refuses to open a replica fenced before.
pub fn refuse_if_diverged(dir: &Path) -> Result<()> {
    let path = dir.join(DIVERGED_FILE);
    let Some(bytes) = read_small(&path)? else {
        return Ok(());
    };
    let verdict: Divergence = serde_json::from_slice(&bytes).map_err(|e| Error::DataDir {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    Err(Error::Diverged {
        path,
        seq: verdict.seq,
    })
}

/// The leader's side: once a second, while this replica leads, compare
/// heads with every voter. Ends when the partition is dropped or fenced.
pub async fn watch(partition: Weak<Partition>, peers: Peers) {
    let mut questions = BTreeSet::new();
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(partition) = partition.upgrade() else {
            return;
        };
        if partition.diverged().is_some() {
            return;
        }
        if let Err(error) = round(&partition, &peers, &mut questions).await {
            tracing::warn!(%error, "comparing chain heads");
        }
    }
}

/// One comparison, if this replica leads.
async fn round(partition: &Partition, peers: &Peers, questions: &mut BTreeSet<u64>) -> Result<()> {
    let (me, voters) = {
        let metrics = partition.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.current_leader != Some(metrics.id) {
            return Ok(());
        }
        let membership = metrics.membership_config.membership();
        let voters: BTreeMap<u64, String> = membership
            .voter_ids()
            .filter_map(|id| Some((id, membership.get_node(&id)?.addr.clone())))
            .collect();
        (metrics.id, voters)
    };
    let mut seqs: BTreeSet<u64> = questions.clone();
    seqs.insert(partition.store.event_log().last());
    let request = HeadsRequest {
        leader: me,
        seqs: seqs.iter().copied().collect(),
        fence: None,
    };
    let request = &request;
    let asked = voters
        .iter()
        .filter(|(id, _)| **id != me)
        .map(|(id, addr)| async move { (*id, ask(peers, partition.id, addr, request).await) });
    let mut heads = BTreeMap::new();
    for (id, answer) in futures_util::future::join_all(asked).await {
        match answer {
            Ok(theirs) => {
                heads.insert(id, theirs.0);
            }
            Err(why) => tracing::debug!(node = id, %why, "no chain heads from a voter"),
        }
    }
    let mentioned: BTreeSet<u64> = heads.values().flat_map(|h| h.keys().copied()).collect();
    heads.insert(me, partition.heads(mentioned.into_iter().chain(seqs))?.0);
    let voter_ids: BTreeSet<u64> = voters.keys().copied().collect();
    let judged = judge(&voter_ids, &heads);
    *questions = judged.open.into_iter().rev().take(QUESTIONS_MAX).collect();
    for (id, verdict) in judged.diverged {
        if id == me {
            partition.fence(verdict);
            continue;
        }
        tracing::error!(
            node = id,
            seq = verdict.seq,
            "a replica's event chain differs from the majority's; fencing it"
        );
        metrics::counter!("replicas_fenced").increment(1);
        let fence = HeadsRequest {
            leader: me,
            seqs: Vec::new(),
            fence: Some(verdict),
        };
        if let Err(why) = ask(peers, partition.id, &voters[&id], &fence).await {
            tracing::warn!(node = id, %why, "telling a diverged replica");
        }
    }
    Ok(())
}

async fn ask(
    peers: &Peers,
    group: u32,
    addr: &str,
    request: &HeadsRequest,
) -> Result<Heads, String> {
    let body = postcard::to_allocvec(request).expect("requests serialize");
    let bytes = peers
        .call(addr, group, Rpc::Heads, body, ASK_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    postcard::from_bytes::<Answer<Heads>>(&bytes).map_err(|e| format!("undecodable answer: {e}"))?
}

/// What one comparison found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Judged {
    /// Voters whose head differs from the majority's, at the first record
    /// where it does.
    diverged: BTreeMap<u64, Divergence>,
    /// Records where heads differ and no majority agrees yet (a voter has
    /// not reached them, or did not answer): asked again.
    open: BTreeSet<u64>,
}

/// Compares the voters' heads record by record: a head held by a majority
/// of the voters is the group's, and a voter holding another one there has
/// diverged.
fn judge(voters: &BTreeSet<u64>, heads: &BTreeMap<u64, BTreeMap<u64, [u8; 32]>>) -> Judged {
    let majority = voters.len() / 2 + 1;
    let seqs: BTreeSet<u64> = heads.values().flat_map(|h| h.keys().copied()).collect();
    let mut judged = Judged::default();
    for seq in seqs {
        let mut held: BTreeMap<[u8; 32], Vec<u64>> = BTreeMap::new();
        for (id, theirs) in heads.iter().filter(|(id, _)| voters.contains(id)) {
            if let Some(head) = theirs.get(&seq) {
                held.entry(*head).or_default().push(*id);
            }
        }
        if held.len() < 2 {
            continue;
        }
        let Some((group_head, _)) = held.iter().find(|(_, ids)| ids.len() >= majority) else {
            judged.open.insert(seq);
            continue;
        };
        for (head, ids) in &held {
            if head == group_head {
                continue;
            }
            for id in ids {
                judged.diverged.entry(*id).or_insert_with(|| Divergence {
                    seq,
                    held: hex::encode(head),
                    majority: hex::encode(group_head),
                });
            }
        }
    }
    judged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(entries: &[(u64, &[(u64, u8)])]) -> BTreeMap<u64, BTreeMap<u64, [u8; 32]>> {
        entries
            .iter()
            .map(|(id, held)| (*id, held.iter().map(|(s, h)| (*s, [*h; 32])).collect()))
            .collect()
    }

    #[test]
    fn the_voter_outside_the_majority_has_diverged() {
        let voters = BTreeSet::from([1, 2, 3]);
        let judged = judge(
            &voters,
            &heads(&[
                (1, &[(5, 1), (9, 1)]),
                (2, &[(5, 1), (9, 2)]),
                (3, &[(5, 1), (9, 1)]),
            ]),
        );
        assert_eq!(judged.open, BTreeSet::new());
        assert_eq!(
            judged.diverged,
            BTreeMap::from([(
                2,
                Divergence {
                    seq: 9,
                    held: hex::encode([2; 32]),
                    majority: hex::encode([1; 32]),
                }
            )])
        );
    }

    #[test]
    fn a_difference_without_a_majority_stays_open() {
        let voters = BTreeSet::from([1, 2, 3]);
        // Voter 3 has not reached record 9, or did not answer.
        let judged = judge(
            &voters,
            &heads(&[(1, &[(9, 1)]), (2, &[(9, 2)]), (3, &[(4, 1)])]),
        );
        assert_eq!(judged.diverged, BTreeMap::new());
        assert_eq!(judged.open, BTreeSet::from([9]));
    }

    #[test]
    fn agreement_and_answers_from_non_voters_judge_no_one() {
        let voters = BTreeSet::from([1, 2, 3]);
        let judged = judge(
            &voters,
            &heads(&[
                (1, &[(9, 1)]),
                (2, &[(9, 1)]),
                (3, &[(7, 4)]),
                (4, &[(9, 5)]),
            ]),
        );
        assert_eq!(judged, Judged::default());
    }

    #[test]
    fn the_leader_can_be_the_minority() {
        let voters = BTreeSet::from([1, 2, 3, 4, 5]);
        let judged = judge(
            &voters,
            &heads(&[
                (1, &[(3, 9)]),
                (2, &[(3, 9)]),
                (3, &[(3, 7)]),
                (4, &[(3, 7)]),
                (5, &[(3, 7)]),
            ]),
        );
        let diverged: Vec<u64> = judged.diverged.keys().copied().collect();
        assert_eq!(diverged, vec![1, 2]);
    }
}

//! Which members hold a replica of each partition: every change is made
//! by the partition's leader, whichever member it was asked of.

use super::Node;
use super::router::Route;
use crate::cluster::Rpc;
use crate::service::{MembershipError, SubmitError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A change to one partition's replicas, as the leader makes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Membership {
    /// The node and the address its peers reach it at.
    Add(u64, String),
    Remove(u64),
}

/// How long a change may take at the leader: an added replica catches up
/// first, by snapshot when the log was compacted.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a change follows the leadership to the next leader (a leader
/// whose own replica is removed steps down halfway).
const ATTEMPTS: u32 = 40;
const PAUSE: Duration = Duration::from_millis(250);

impl Node {
    /// Makes `change` at `group`'s leader, following it as it moves (a
    /// leader that does not answer is not asked again: the change may
    /// have been made, and a retry is the caller's).
    pub(super) async fn change_replicas_at(
        &self,
        group: u32,
        change: Membership,
    ) -> Result<Vec<u64>, MembershipError> {
        let mut attempt = 0;
        loop {
            let answer = match self.router.route(group).await {
                Ok(Route::Here) => {
                    let here = self.change_replicas_here(group, change.clone());
                    tokio::time::timeout(CHANGE_TIMEOUT, here)
                        .await
                        .unwrap_or_else(|_| {
                            Err(MembershipError::Refused(format!(
                                "not done in {} s; it may still be made: see /v1/cluster/status",
                                CHANGE_TIMEOUT.as_secs()
                            )))
                        })
                }
                Ok(Route::Leader(_, addr)) => self.forward_replicas(group, &addr, &change).await?,
                Err(SubmitError::NotLeader { .. }) => {
                    Err(MembershipError::NotLeader { leader: None })
                }
                Err(unavailable) => Err(MembershipError::Unavailable(unavailable)),
            };
            match answer {
                Err(MembershipError::NotLeader { .. }) if attempt < ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(PAUSE).await;
                }
                answer => return answer,
            }
        }
    }

    /// A change forwarded here, to `group`'s leader.
    pub async fn change_replicas_here(
        &self,
        group: u32,
        change: Membership,
    ) -> Result<Vec<u64>, MembershipError> {
        let partition = self
            .partition(group)
            .ok_or_else(|| MembershipError::Refused(format!("no partition {group} here")))?;
        let changed = match change {
            Membership::Add(node_id, address) => partition.add_member(node_id, address).await,
            Membership::Remove(node_id) => partition.remove_member(node_id).await,
        };
        if changed.is_ok() {
            tracing::info!(partition = group, ?changed, "replicas changed");
        }
        changed
    }

    /// The leader's answer; `Err` when none came.
    async fn forward_replicas(
        &self,
        group: u32,
        addr: &str,
        change: &Membership,
    ) -> Result<Result<Vec<u64>, MembershipError>, MembershipError> {
        let Some(peers) = &self.router.group.peers else {
            return Err(MembershipError::NotLeader { leader: None });
        };
        let body = postcard::to_allocvec(change).expect("replica changes serialize");
        let answer = peers
            .call(addr, group, Rpc::Replicas, body, CHANGE_TIMEOUT)
            .await
            .map(|bytes| {
                postcard::from_bytes::<Result<Vec<u64>, MembershipError>>(&bytes).unwrap_or_else(
                    |e| Err(MembershipError::Refused(format!("undecodable answer: {e}"))),
                )
            });
        match &answer {
            Err(error) => {
                tracing::warn!(partition = group, %error, "forwarding a replica change");
                self.router.forget(group);
            }
            Ok(Err(MembershipError::NotLeader { .. })) => self.router.forget(group),
            Ok(_) => {}
        }
        answer.map_err(|_| MembershipError::NotLeader { leader: None })
    }
}

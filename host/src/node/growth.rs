//! The node's partition set grows while it serves: a partition split off
//! another opens here once a replica here has split it off (from the first
//! state the split wrote beside its parent, or, where that replica caught
//! up past the split by a snapshot, empty, to be sent a snapshot by the new
//! group), or once partition 0's map routes to it and no voter here of its
//! parent is still to split. Calls are routed by partition 0's map once
//! every partition it names is open here.
//!
//! A split is driven by partition 0's leader (one at a time): the map
//! allocates the child, the parent's leader writes the split entry, the
//! map routes the range to the child. A new leader of partition 0
//! completes a split its predecessor left halfway.

use super::Node;
use super::layout::{Allocation, Layout, MapChange, MapOutcome};
use super::map::{Holdings, PartitionMap};
use super::router::{Route, Router};
use crate::Result;
use crate::cluster::Rpc;
use crate::partition::split::partition_dir;
use crate::partition::{Group, Member, Partition, PartitionOptions, SplitOutcome};
use crate::raft::SplitEntry;
use crate::service::{MembershipError, Position, SplitDone, SubmitError};
use std::path::PathBuf;
use std::time::Duration;

/// What opening a partition takes.
pub(super) struct Grower {
    pub data_dir: PathBuf,
    pub member: Member,
    /// The node's group, as a member that waits to be given a partition
    /// (a split's child starts with its parent's members).
    pub group: Group,
    pub engine: wasmtime::Engine,
    pub options: PartitionOptions,
    /// The map the cluster was made with.
    pub base: PartitionMap,
}

impl Grower {
    /// Opens, in id order, the partitions this node is to run and does not
    /// yet; then routes by partition 0's map if every partition it names is
    /// open here.
    pub async fn grow(&self, router: &Router) -> Result<()> {
        let first = router.get(super::FIRST).expect("partition 0 is open");
        let layout = first
            .store()
            .layout()?
            .unwrap_or_else(|| Layout::new(self.base.clone()));
        loop {
            let next = router.count();
            let Some(holdings) = opens(router, &layout, next)? else {
                break;
            };
            let dir = partition_dir(&self.data_dir, next);
            let partition = Partition::open(
                &dir,
                holdings,
                &self.member,
                &self.group,
                &self.engine,
                &self.options,
            )
            .await?;
            tracing::info!(partition = next, "opened a partition split off another");
            router.add(partition);
        }
        if layout.map.count() <= router.count() && *router.map() != layout.map {
            tracing::info!(
                partitions = layout.map.count(),
                "calls are routed by the new map"
            );
            router.set_map(layout.map);
        }
        Ok(())
    }
}

/// What partition `next` holds, if this node opens it now.
fn opens(router: &Router, layout: &Layout, next: u32) -> Result<Option<Holdings>> {
    for partition in router.partitions() {
        let splits = partition.store().splits()?;
        let mut children = splits.iter().flat_map(|s| &s.children);
        if let Some(child) = children.find(|c| c.partition == next) {
            return Ok(Some(Holdings::from_range(next, child.range)));
        }
    }
    let Some(range) = layout.map.range(next) else {
        return Ok(None);
    };
    let parent = layout.parent_of(next).and_then(|p| router.partition(p));
    let splits_here = parent.is_some_and(|p| p.hosted());
    Ok((!splits_here).then(|| Holdings::from_range(next, range)))
}

/// How long a split's answer waits for this node to route by the new map.
const ROUTED_WAIT: Duration = Duration::from_secs(5);

impl Node {
    /// Splits partition `parent`, through partition 0's leader, which
    /// drives it; answers once the map routes to the new partition.
    pub(super) async fn split_partition(&self, parent: u32) -> Result<SplitDone, MembershipError> {
        let done = match self.router.route(super::FIRST).await {
            Ok(Route::Here) => self.split_here(parent).await?,
            Ok(Route::Leader(_, addr)) => self.forward_split(parent, &addr).await?,
            Err(SubmitError::NotLeader { .. }) => {
                return Err(MembershipError::NotLeader { leader: None });
            }
            Err(unavailable) => return Err(MembershipError::Unavailable(unavailable)),
        };
        let deadline = tokio::time::Instant::now() + ROUTED_WAIT;
        while self.router.map().count() <= done.child && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(done)
    }

    /// Drives a split as partition 0's leader: the map allocates the
    /// child, the parent splits, the map routes to the child.
    pub async fn split_here(&self, parent: u32) -> Result<SplitDone, MembershipError> {
        let _one = self.router.splitting.lock().await;
        let allocate = MapChange::Allocate {
            base: PartitionMap::new(self.base),
            parent,
            id: uuid::Uuid::new_v4().as_u128(),
        };
        match self.router.change_map(allocate).await? {
            MapOutcome::Allocated(allocation) => self.router.complete(allocation).await,
            MapOutcome::Refused(why) => Err(MembershipError::Refused(why.to_string())),
            other => Err(unexpected(other)),
        }
    }

    /// A split entry forwarded here, to the parent's leader.
    pub async fn split_entry_here(
        &self,
        parent: u32,
        entry: SplitEntry,
    ) -> Result<(SplitOutcome, Position), SubmitError> {
        self.writable(parent)?.split(entry.child, entry.id).await
    }

    async fn forward_split(&self, parent: u32, addr: &str) -> Result<SplitDone, MembershipError> {
        let Some(peers) = &self.router.group.peers else {
            return Err(MembershipError::NotLeader { leader: None });
        };
        let body = postcard::to_allocvec(&parent).expect("a partition id serializes");
        let bytes = peers
            .call(addr, super::FIRST, Rpc::Split, body, SPLIT_TIMEOUT)
            .await
            .map_err(|e| {
                self.router.forget(super::FIRST);
                MembershipError::Unavailable(SubmitError::NoQuorum(format!(
                    "asking partition 0's leader to split: {e}"
                )))
            })?;
        postcard::from_bytes::<Result<SplitDone, MembershipError>>(&bytes)
            .unwrap_or_else(|e| Err(MembershipError::Refused(format!("undecodable answer: {e}"))))
    }
}

/// How long a split forwarded to partition 0's leader may take: the
/// parent's split entry writes half its state.
const SPLIT_TIMEOUT: Duration = Duration::from_secs(120);

fn unexpected(outcome: MapOutcome) -> MembershipError {
    MembershipError::Refused(format!("the map answered {outcome:?}"))
}

impl Router {
    /// Proposes a map entry (this node must lead partition 0).
    async fn change_map(&self, change: MapChange) -> Result<MapOutcome, MembershipError> {
        let first = self
            .get(super::FIRST)
            .map_err(MembershipError::Unavailable)?;
        match first.change_map(change).await {
            Ok((outcome, _)) => Ok(outcome),
            Err(SubmitError::NotLeader { .. }) => Err(MembershipError::NotLeader { leader: None }),
            Err(unavailable) => Err(MembershipError::Unavailable(unavailable)),
        }
    }

    /// Completes an allocated split: the parent splits (at its leader),
    /// then the map routes to the child, or drops the allocation if the
    /// parent refused.
    async fn complete(&self, allocation: Allocation) -> Result<SplitDone, MembershipError> {
        let Allocation { parent, child, id } = allocation;
        let (outcome, position) = self
            .split_entry(parent, SplitEntry { child, id })
            .await
            .map_err(MembershipError::Unavailable)?;
        match outcome {
            SplitOutcome::Split(done) => match self.change_map(MapChange::Route { child }).await? {
                MapOutcome::Routed(map) => {
                    tracing::info!(parent, child, index = done.index, "split a partition");
                    Ok(SplitDone {
                        parent,
                        child,
                        index: done.index,
                        partitions: map.count(),
                    })
                }
                other => Err(unexpected(other)),
            },
            SplitOutcome::Refused(why) => {
                self.change_map(MapChange::Abandon { child }).await?;
                Err(MembershipError::Refused(format!(
                    "partition {parent} refused to split at index {}: {why}",
                    position.index
                )))
            }
        }
    }

    /// Proposes a split entry at `parent`'s leader.
    async fn split_entry(
        &self,
        parent: u32,
        entry: SplitEntry,
    ) -> Result<(SplitOutcome, Position), SubmitError> {
        match self.route(parent).await? {
            Route::Here => self.get(parent)?.split(entry.child, entry.id).await,
            Route::Leader(id, addr) => {
                let body = postcard::to_allocvec(&entry).expect("split entries serialize");
                self.forward(parent, id, &addr, Rpc::SplitEntry, body).await
            }
        }
    }

    /// Completes the split a previous leader of partition 0 left halfway,
    /// if this node leads partition 0 and drives no split now.
    pub(super) async fn resume_split(&self) {
        let Ok(Route::Here) = self.route(super::FIRST).await else {
            return;
        };
        let Ok(_one) = self.splitting.try_lock() else {
            return;
        };
        let first = match self.get(super::FIRST) {
            Ok(first) => first,
            Err(_) => return,
        };
        let pending = match first.store().layout() {
            Ok(layout) => layout.and_then(|l| l.pending),
            Err(error) => {
                tracing::warn!(%error, "reading the map");
                return;
            }
        };
        if let Some(allocation) = pending {
            tracing::info!(?allocation, "resuming a split");
            if let Err(error) = self.complete(allocation).await {
                tracing::warn!(?allocation, %error, "resuming a split");
            }
        }
    }
}

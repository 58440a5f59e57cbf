//! The map as the cluster agrees on it: held by partition 0 (every member
//! holds a replica of it) and changed only by map entries in its log. A
//! split takes two: the child's id is allocated first (so that two splits
//! never name one child), and the moving range is routed to the child only
//! once its parent has split, so that no call is routed to a partition
//! that does not exist yet.

use super::map::PartitionMap;
use serde::{Deserialize, Serialize};

/// The map, and the split under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub map: PartitionMap,
    /// Each partition split off another, with its parent, in split order.
    pub parents: Vec<Lineage>,
    /// The split allocated and not yet routed (one at a time).
    pub pending: Option<Allocation>,
}

/// A partition split off another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    pub child: u32,
    pub parent: u32,
}

/// A split allocated by the map: `parent` splits off `child`, in a split
/// entry named `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub parent: u32,
    pub child: u32,
    pub id: u128,
}

/// A map entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapChange {
    /// Allocates the next partition id to split off `parent` (answers the
    /// split under way if it is `parent`'s). `base`: the map of the
    /// partition count the cluster was made with, in force until the
    /// first map entry (every member runs that count).
    Allocate {
        base: PartitionMap,
        parent: u32,
        id: u128,
    },
    /// The parent split: the upper half of its range is the child's.
    Route { child: u32 },
    /// The parent refused the split: the allocation goes.
    Abandon { child: u32 },
}

/// What a map entry did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapOutcome {
    Allocated(Allocation),
    /// The map after the split (also the answer when routed already).
    Routed(PartitionMap),
    Abandoned,
    Refused(MapRefused),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MapRefused {
    #[error("there is no partition {0}")]
    UnknownPartition(u32),
    #[error("partition {0}'s range is a single hash: it cannot split")]
    Indivisible(u32),
    #[error("the map holds {} partitions, the most it may", super::PARTITIONS_MAX)]
    Full,
    #[error("partition {} is splitting off partition {} now: one split at a time", .0.parent, .0.child)]
    Busy(Allocation),
    #[error("no split of partition {0} is under way")]
    NotPending(u32),
    #[error("the map is held by partition 0, not this one")]
    NotTheMap,
}

impl Layout {
    /// The layout of a cluster made with `map`, before any split.
    pub fn new(map: PartitionMap) -> Layout {
        Layout {
            map,
            parents: Vec::new(),
            pending: None,
        }
    }

    /// Whether `partition` is in the map, or allocated to the split under
    /// way.
    pub fn names(&self, partition: u32) -> bool {
        partition < self.map.count() || self.pending.is_some_and(|p| p.child == partition)
    }

    /// What `change` does to `held` (`None`: no map entry yet), and the
    /// layout after it (`None`: unchanged).
    pub fn apply(held: Option<&Layout>, change: &MapChange) -> (MapOutcome, Option<Layout>) {
        let refused = |why| (MapOutcome::Refused(why), None);
        match change {
            MapChange::Allocate { base, parent, id } => {
                let layout = held.cloned().unwrap_or_else(|| Layout::new(base.clone()));
                match layout.pending {
                    Some(pending) if pending.parent == *parent => {
                        return (MapOutcome::Allocated(pending), None);
                    }
                    Some(pending) => return refused(MapRefused::Busy(pending)),
                    None => {}
                }
                let child = match layout.map.split(*parent) {
                    Some((_, child)) => child,
                    None if layout.map.range(*parent).is_none() => {
                        return refused(MapRefused::UnknownPartition(*parent));
                    }
                    None if layout.map.count() >= super::PARTITIONS_MAX => {
                        return refused(MapRefused::Full);
                    }
                    None => return refused(MapRefused::Indivisible(*parent)),
                };
                let allocation = Allocation {
                    parent: *parent,
                    child,
                    id: *id,
                };
                let after = Layout {
                    pending: Some(allocation),
                    ..layout
                };
                (MapOutcome::Allocated(allocation), Some(after))
            }
            MapChange::Route { child } => {
                let Some(layout) = held else {
                    return refused(MapRefused::NotPending(*child));
                };
                if layout.parents.iter().any(|l| l.child == *child) {
                    return (MapOutcome::Routed(layout.map.clone()), None);
                }
                let Some(pending) = layout.pending.filter(|p| p.child == *child) else {
                    return refused(MapRefused::NotPending(*child));
                };
                let (map, routed) = layout
                    .map
                    .split(pending.parent)
                    .expect("an allocated split divides its parent");
                debug_assert_eq!(routed, pending.child);
                let mut parents = layout.parents.clone();
                parents.push(Lineage {
                    child: pending.child,
                    parent: pending.parent,
                });
                let after = Layout {
                    map: map.clone(),
                    parents,
                    pending: None,
                };
                (MapOutcome::Routed(map), Some(after))
            }
            MapChange::Abandon { child } => match held.and_then(|l| l.pending) {
                Some(pending) if pending.child == *child => {
                    let after = Layout {
                        pending: None,
                        ..held.expect("pending").clone()
                    };
                    (MapOutcome::Abandoned, Some(after))
                }
                _ => refused(MapRefused::NotPending(*child)),
            },
        }
    }

    /// The partition `child` was split off, if it was (or is being).
    pub fn parent_of(&self, child: u32) -> Option<u32> {
        let routed = self.parents.iter().find(|l| l.child == child);
        routed
            .map(|l| l.parent)
            .or_else(|| self.pending.filter(|p| p.child == child).map(|p| p.parent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocate(held: Option<&Layout>, parent: u32, id: u128) -> (MapOutcome, Option<Layout>) {
        let base = PartitionMap::new(2);
        Layout::apply(held, &MapChange::Allocate { base, parent, id })
    }

    #[test]
    fn a_split_is_allocated_then_routed_and_answers_the_same_when_asked_again() {
        let (outcome, layout) = allocate(None, 1, 7);
        let allocation = Allocation {
            parent: 1,
            child: 2,
            id: 7,
        };
        assert_eq!(outcome, MapOutcome::Allocated(allocation));
        let layout = layout.expect("changed");
        assert_eq!(layout.map, PartitionMap::new(2), "not routed yet");
        assert_eq!(layout.parent_of(2), Some(1));
        assert!(layout.names(2), "allocated: a position may name it");
        assert!(!layout.names(3));
        // The same parent again: the split under way; another: busy.
        assert_eq!(
            allocate(Some(&layout), 1, 8),
            (MapOutcome::Allocated(allocation), None)
        );
        assert_eq!(
            allocate(Some(&layout), 0, 9),
            (MapOutcome::Refused(MapRefused::Busy(allocation)), None)
        );
        let (outcome, routed) = Layout::apply(Some(&layout), &MapChange::Route { child: 2 });
        let routed = routed.expect("changed");
        let expected = PartitionMap::new(2).split(1).expect("splits").0;
        assert_eq!(outcome, MapOutcome::Routed(expected.clone()));
        assert_eq!(routed.map, expected);
        assert_eq!(routed.pending, None);
        assert_eq!(routed.parent_of(2), Some(1));
        assert!(routed.names(2) && !routed.names(3));
        assert_eq!(
            Layout::apply(Some(&routed), &MapChange::Route { child: 2 }),
            (MapOutcome::Routed(expected), None)
        );
        // The next split gets the next id.
        let (outcome, _) = allocate(Some(&routed), 0, 10);
        let MapOutcome::Allocated(next) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(next.child, 3);
    }

    #[test]
    fn refusals_change_nothing() {
        assert_eq!(
            allocate(None, 5, 1),
            (MapOutcome::Refused(MapRefused::UnknownPartition(5)), None)
        );
        assert_eq!(
            Layout::apply(None, &MapChange::Route { child: 2 }),
            (MapOutcome::Refused(MapRefused::NotPending(2)), None)
        );
        let (_, layout) = allocate(None, 0, 1);
        let layout = layout.expect("changed");
        assert_eq!(
            Layout::apply(Some(&layout), &MapChange::Route { child: 3 }),
            (MapOutcome::Refused(MapRefused::NotPending(3)), None)
        );
        let (outcome, abandoned) = Layout::apply(Some(&layout), &MapChange::Abandon { child: 2 });
        assert_eq!(outcome, MapOutcome::Abandoned);
        let abandoned = abandoned.expect("changed");
        assert_eq!(abandoned, Layout::new(PartitionMap::new(2)));
        assert_eq!(abandoned.parent_of(2), None);
        assert!(!abandoned.names(2));
        let full = Layout::new(PartitionMap::new(super::super::PARTITIONS_MAX));
        assert_eq!(
            allocate(Some(&full), 0, 1),
            (MapOutcome::Refused(MapRefused::Full), None)
        );
    }
}

//! The version schedule: which state-machine versions are deployed and
//! from which log index each one runs. It is replicated state, changed
//! only by deploy and activate entries of the log (`VersionChange`), so
//! every replica and every audit picks the same version for every batch.

use super::VersionHash;
use serde::{Deserialize, Serialize};

/// A change to the schedule, as a log entry carries it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionChange {
    /// The release a new group's first leader runs: deployed and active
    /// from the next entry if no version is active yet, else nothing (the
    /// log decides, not the proposer's view, which may be behind).
    Bootstrap(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A component's bytes: every replica and every later audit has them.
    /// Checked by the member that took the request before it is proposed
    /// (`Version::compile`).
    Deploy(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Runs `hash` from index `at` (the entry after this one by default).
    Activate {
        hash: VersionHash,
        at: Option<u64>,
        /// Why an unverified version is activated anyway; recorded.
        force: Option<String>,
    },
    /// The outcome of replaying recorded history through `hash` (`wallet
    /// sm verify`), recorded so that activation can require it.
    Verified {
        hash: VersionHash,
        verification: Verification,
    },
    /// A verification of the entries from `from` on only, started at a
    /// replica's snapshot: it stands like one from genesis, and the log
    /// records which history it covered.
    VerifiedWindow {
        hash: VersionHash,
        from: u64,
        verification: Verification,
    },
    /// Withdraws the activation of `hash` that the log has not reached
    /// yet, so a mistaken `at` blocks nothing until then.
    Cancel { hash: VersionHash },
}

impl VersionChange {
    /// The component the entry carries, if any.
    pub fn component(&self) -> Option<&[u8]> {
        match self {
            VersionChange::Bootstrap(bytes) | VersionChange::Deploy(bytes) => Some(bytes),
            _ => None,
        }
    }
}

impl std::fmt::Debug for VersionChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionChange::Bootstrap(bytes) => write!(
                f,
                "Bootstrap({}, {} bytes)",
                VersionHash::of(bytes),
                bytes.len()
            ),
            VersionChange::Deploy(bytes) => {
                write!(
                    f,
                    "Deploy({}, {} bytes)",
                    VersionHash::of(bytes),
                    bytes.len()
                )
            }
            VersionChange::Activate { hash, at, force } => f
                .debug_struct("Activate")
                .field("hash", hash)
                .field("at", at)
                .field("force", force)
                .finish(),
            VersionChange::Verified { hash, verification } => f
                .debug_struct("Verified")
                .field("hash", hash)
                .field("verification", verification)
                .finish(),
            VersionChange::VerifiedWindow {
                hash,
                from,
                verification,
            } => f
                .debug_struct("VerifiedWindow")
                .field("hash", hash)
                .field("from", from)
                .field("verification", verification)
                .finish(),
            VersionChange::Cancel { hash } => f.debug_struct("Cancel").field("hash", hash).finish(),
        }
    }
}

/// What replaying history through a candidate found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The last log index replayed.
    pub through: u64,
    pub batches: u64,
    /// Batches whose events, outcomes or state writes differ.
    pub differing: u64,
}

/// What a change did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionOutcome {
    /// `new` is false when the version was deployed before (at `index`).
    Deployed {
        hash: VersionHash,
        index: u64,
        new: bool,
    },
    Activated {
        hash: VersionHash,
        from: u64,
    },
    Verified {
        hash: VersionHash,
    },
    Refused(VersionRefused),
    /// The activation that would have run `hash` from `from` is withdrawn.
    Cancelled {
        hash: VersionHash,
        from: u64,
    },
}

/// Why an activation (or a verification record) was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum VersionRefused {
    #[error("version {0} is not deployed")]
    NotDeployed(VersionHash),
    #[error("index {at} is not after this entry's index {index}")]
    PastIndex { at: u64, index: u64 },
    #[error("version {0} already runs from that index")]
    AlreadyActive(VersionHash),
    #[error("version {hash} is already scheduled to run from index {from}")]
    Pending { hash: VersionHash, from: u64 },
    #[error(
        "version {0} has no verification that found history identical; verify it, or force the activation with a reason"
    )]
    NotVerified(VersionHash),
    #[error("a forced activation needs a reason")]
    NoReason,
    #[error(
        "the first version runs from the entry after its activation; at_index is for later ones"
    )]
    FirstAtIndex,
    #[error("version {hash} has a verification through index {through} already")]
    OlderVerification { hash: VersionHash, through: u64 },
    #[error("version {0} has no activation the log has not reached yet")]
    NotScheduled(VersionHash),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Deployed {
    hash: VersionHash,
    index: u64,
    verification: Option<Verification>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Activation {
    hash: VersionHash,
    /// The first index the version runs.
    from: u64,
    /// The index of the activate entry.
    index: u64,
    force: Option<String>,
}

/// Where a version stands, as `wallet sm list` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    Deployed,
    Verified,
    /// Activated from an index the log has not reached yet.
    Scheduled,
    Active,
    Retired,
}

/// One version of the schedule, as `wallet sm list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub hash: VersionHash,
    pub state: VersionState,
    pub deployed_at: u64,
    /// The index its latest activation runs it from.
    pub active_from: Option<u64>,
    /// The reason its latest activation was forced with.
    pub forced: Option<String>,
    pub verification: Option<Verification>,
}

/// The schedule. Activations are in log order, each running from a later
/// index than the one before.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    deployed: Vec<Deployed>,
    activations: Vec<Activation>,
}

impl Schedule {
    /// The schedule of a store written before versions were log entries:
    /// `hash` ran everything from genesis.
    pub fn genesis(hash: VersionHash) -> Schedule {
        Schedule {
            deployed: vec![Deployed {
                hash,
                index: 0,
                verification: None,
            }],
            activations: vec![Activation {
                hash,
                from: 0,
                index: 0,
                force: None,
            }],
        }
    }

    /// A version activated to run from an index after `index`.
    pub fn activated_after(&self, index: u64) -> Option<VersionHash> {
        self.activations
            .iter()
            .rev()
            .find(|a| a.from > index)
            .map(|a| a.hash)
    }

    /// The version that runs the entry at `index`.
    pub fn version_at(&self, index: u64) -> Option<VersionHash> {
        self.activations
            .iter()
            .rev()
            .find(|a| a.from <= index)
            .map(|a| a.hash)
    }

    /// The version an activation runs from `index` on, if one does.
    pub fn activated_from(&self, index: u64) -> Option<VersionHash> {
        self.activations
            .iter()
            .rev()
            .find(|a| a.from == index)
            .map(|a| a.hash)
    }

    /// Whether any version was ever activated.
    pub fn has_active(&self) -> bool {
        !self.activations.is_empty()
    }

    pub fn is_deployed(&self, hash: VersionHash) -> bool {
        self.deployed(hash).is_some()
    }

    fn deployed(&self, hash: VersionHash) -> Option<&Deployed> {
        self.deployed.iter().find(|d| d.hash == hash)
    }

    /// Applies the change the entry at `index` carries.
    pub fn apply(&mut self, change: &VersionChange, index: u64) -> VersionOutcome {
        let refused = VersionOutcome::Refused;
        match change {
            VersionChange::Bootstrap(bytes) => {
                if let Some(active) = self.activations.last() {
                    return refused(VersionRefused::AlreadyActive(active.hash));
                }
                let hash = VersionHash::of(bytes);
                self.apply(&VersionChange::Deploy(bytes.clone()), index);
                self.activations.push(Activation {
                    hash,
                    from: index + 1,
                    index,
                    force: None,
                });
                VersionOutcome::Activated {
                    hash,
                    from: index + 1,
                }
            }
            VersionChange::Deploy(bytes) => {
                let hash = VersionHash::of(bytes);
                if let Some(earlier) = self.deployed(hash) {
                    return VersionOutcome::Deployed {
                        hash,
                        index: earlier.index,
                        new: false,
                    };
                }
                self.deployed.push(Deployed {
                    hash,
                    index,
                    verification: None,
                });
                VersionOutcome::Deployed {
                    hash,
                    index,
                    new: true,
                }
            }
            VersionChange::Activate { hash, at, force } => {
                match self.activation(*hash, *at, force.as_deref(), index) {
                    Ok(activation) => {
                        let from = activation.from;
                        self.activations.push(activation);
                        VersionOutcome::Activated { hash: *hash, from }
                    }
                    Err(why) => refused(why),
                }
            }
            VersionChange::Verified { hash, verification }
            | VersionChange::VerifiedWindow {
                hash, verification, ..
            } => {
                match self.deployed.iter_mut().find(|d| d.hash == *hash) {
                    // Verifications may be recorded out of order: the one
                    // that reached further stands.
                    Some(Deployed {
                        verification: Some(held),
                        ..
                    }) if held.through > verification.through => {
                        refused(VersionRefused::OlderVerification {
                            hash: *hash,
                            through: held.through,
                        })
                    }
                    Some(deployed) => {
                        deployed.verification = Some(verification.clone());
                        VersionOutcome::Verified { hash: *hash }
                    }
                    None => refused(VersionRefused::NotDeployed(*hash)),
                }
            }
            VersionChange::Cancel { hash } => match self.activations.last() {
                // Only the last activation can be ahead of the log: a
                // pending one blocks any other.
                Some(pending) if pending.hash == *hash && pending.from > index => {
                    let from = pending.from;
                    self.activations.pop();
                    VersionOutcome::Cancelled { hash: *hash, from }
                }
                _ if !self.is_deployed(*hash) => refused(VersionRefused::NotDeployed(*hash)),
                _ => refused(VersionRefused::NotScheduled(*hash)),
            },
        }
    }

    /// The activation an activate entry at `index` makes, or why none.
    /// The first version of a group needs no verification (there is no
    /// history to replay) and runs from the next entry (no batch may find
    /// no version).
    fn activation(
        &self,
        hash: VersionHash,
        at: Option<u64>,
        force: Option<&str>,
        index: u64,
    ) -> Result<Activation, VersionRefused> {
        let deployed = self
            .deployed(hash)
            .ok_or(VersionRefused::NotDeployed(hash))?;
        let from = at.unwrap_or(index + 1);
        if !self.has_active() && from != index + 1 {
            return Err(VersionRefused::FirstAtIndex);
        }
        if from <= index {
            return Err(VersionRefused::PastIndex { at: from, index });
        }
        if let Some(pending) = self.activations.last().filter(|a| a.from > index) {
            return Err(VersionRefused::Pending {
                hash: pending.hash,
                from: pending.from,
            });
        }
        if self.version_at(from) == Some(hash) {
            return Err(VersionRefused::AlreadyActive(hash));
        }
        let identical = deployed
            .verification
            .as_ref()
            .is_some_and(|v| v.differing == 0);
        let force = match force.map(str::trim) {
            Some("") => return Err(VersionRefused::NoReason),
            Some(reason) => Some(reason.to_string()),
            None if identical || !self.has_active() => None,
            None => return Err(VersionRefused::NotVerified(hash)),
        };
        Ok(Activation {
            hash,
            from,
            index,
            force,
        })
    }

    /// Every deployed version and where it stands once the entry at
    /// `applied` is applied.
    pub fn list(&self, applied: u64) -> Vec<VersionInfo> {
        let running = self.version_at(applied + 1);
        self.deployed
            .iter()
            .map(|d| {
                let latest = self.activations.iter().rev().find(|a| a.hash == d.hash);
                let state = match latest {
                    _ if running == Some(d.hash) => VersionState::Active,
                    Some(a) if a.from > applied + 1 => VersionState::Scheduled,
                    Some(_) => VersionState::Retired,
                    None if d.verification.as_ref().is_some_and(|v| v.differing == 0) => {
                        VersionState::Verified
                    }
                    None => VersionState::Deployed,
                };
                VersionInfo {
                    hash: d.hash,
                    state,
                    deployed_at: d.index,
                    active_from: latest.map(|a| a.from),
                    forced: latest.and_then(|a| a.force.clone()),
                    verification: d.verification.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(schedule: &mut Schedule, bytes: &[u8], index: u64) -> VersionHash {
        let outcome = schedule.apply(&VersionChange::Deploy(bytes.to_vec()), index);
        let VersionOutcome::Deployed { hash, .. } = outcome else {
            panic!("deploy: {outcome:?}");
        };
        hash
    }

    fn activate(
        schedule: &mut Schedule,
        hash: VersionHash,
        at: Option<u64>,
        force: Option<&str>,
        index: u64,
    ) -> VersionOutcome {
        let force = force.map(String::from);
        schedule.apply(&VersionChange::Activate { hash, at, force }, index)
    }

    fn verified(schedule: &mut Schedule, hash: VersionHash, differing: u64, index: u64) {
        let verification = Verification {
            through: index - 1,
            batches: 10,
            differing,
        };
        let change = VersionChange::Verified { hash, verification };
        assert_eq!(
            schedule.apply(&change, index),
            VersionOutcome::Verified { hash }
        );
    }

    #[test]
    fn the_first_version_runs_from_the_entry_after_its_activation() {
        let mut schedule = Schedule::default();
        let a = deploy(&mut schedule, b"a", 2);
        assert_eq!(schedule.version_at(3), None);
        assert_eq!(
            activate(&mut schedule, a, None, None, 3),
            VersionOutcome::Activated { hash: a, from: 4 }
        );
        assert_eq!(schedule.version_at(3), None);
        assert_eq!(schedule.version_at(4), Some(a));
        assert_eq!(schedule.version_at(u64::MAX), Some(a));
    }

    #[test]
    fn deploying_again_keeps_the_first_index() {
        let mut schedule = Schedule::default();
        deploy(&mut schedule, b"a", 2);
        assert_eq!(
            schedule.apply(&VersionChange::Deploy(b"a".to_vec()), 9),
            VersionOutcome::Deployed {
                hash: VersionHash::of(b"a"),
                index: 2,
                new: false
            }
        );
        assert_eq!(schedule.list(9).len(), 1);
    }

    #[test]
    fn a_later_version_needs_an_identical_verification_or_a_reason() {
        let mut schedule = Schedule::genesis(VersionHash::of(b"a"));
        let b = deploy(&mut schedule, b"b", 5);
        let not_verified = VersionOutcome::Refused(VersionRefused::NotVerified(b));
        assert_eq!(activate(&mut schedule, b, None, None, 6), not_verified);
        verified(&mut schedule, b, 1, 7);
        assert_eq!(activate(&mut schedule, b, None, None, 8), not_verified);
        assert_eq!(
            activate(&mut schedule, b, None, Some(" "), 8),
            VersionOutcome::Refused(VersionRefused::NoReason)
        );
        assert_eq!(
            activate(&mut schedule, b, None, Some("fee rule, signed off"), 8),
            VersionOutcome::Activated { hash: b, from: 9 }
        );
        let listed = schedule.list(9);
        assert_eq!(listed[1].forced.as_deref(), Some("fee rule, signed off"));
        assert_eq!(listed[1].state, VersionState::Active);
        assert_eq!(listed[0].state, VersionState::Retired);
    }

    #[test]
    fn an_activation_at_an_index_switches_there_and_blocks_another_until_then() {
        let a = VersionHash::of(b"a");
        let mut schedule = Schedule::genesis(a);
        let b = deploy(&mut schedule, b"b", 5);
        verified(&mut schedule, b, 0, 6);
        assert_eq!(schedule.list(6)[1].state, VersionState::Verified);
        assert_eq!(
            activate(&mut schedule, b, Some(7), None, 7),
            VersionOutcome::Refused(VersionRefused::PastIndex { at: 7, index: 7 })
        );
        assert_eq!(
            activate(&mut schedule, b, Some(20), None, 7),
            VersionOutcome::Activated { hash: b, from: 20 }
        );
        assert_eq!(schedule.list(7)[1].state, VersionState::Scheduled);
        assert_eq!(
            activate(&mut schedule, a, None, None, 8),
            VersionOutcome::Refused(VersionRefused::Pending { hash: b, from: 20 })
        );
        assert_eq!(schedule.version_at(19), Some(a));
        assert_eq!(schedule.version_at(20), Some(b));
        assert_eq!(
            activate(&mut schedule, b, None, None, 21),
            VersionOutcome::Refused(VersionRefused::AlreadyActive(b))
        );
        // Back to the first version: the history since it ran holds
        // batches it never executed, so it too needs a verification or a
        // reason.
        assert_eq!(
            activate(&mut schedule, a, None, Some("roll back"), 21),
            VersionOutcome::Activated { hash: a, from: 22 }
        );
        assert_eq!(schedule.version_at(21), Some(b));
        assert_eq!(schedule.version_at(22), Some(a));
    }

    #[test]
    fn the_bootstrap_release_runs_only_where_nothing_does() {
        let mut schedule = Schedule::default();
        let release = VersionChange::Bootstrap(b"r".to_vec());
        let r = VersionHash::of(b"r");
        assert_eq!(
            schedule.apply(&release, 2),
            VersionOutcome::Activated { hash: r, from: 3 }
        );
        let b = deploy(&mut schedule, b"b", 4);
        assert_eq!(
            activate(&mut schedule, b, None, Some("x"), 5),
            VersionOutcome::Activated { hash: b, from: 6 }
        );
        // A leader that had not applied all that proposes its release
        // again: nothing changes.
        let before = schedule.clone();
        let other = VersionChange::Bootstrap(b"newer release".to_vec());
        assert_eq!(
            schedule.apply(&other, 7),
            VersionOutcome::Refused(VersionRefused::AlreadyActive(b))
        );
        assert_eq!(schedule, before);
    }

    #[test]
    fn the_first_activation_runs_from_the_next_entry() {
        let mut schedule = Schedule::default();
        let a = deploy(&mut schedule, b"a", 2);
        assert_eq!(
            activate(&mut schedule, a, Some(1000), None, 3),
            VersionOutcome::Refused(VersionRefused::FirstAtIndex)
        );
        assert_eq!(
            activate(&mut schedule, a, Some(4), None, 3),
            VersionOutcome::Activated { hash: a, from: 4 }
        );
    }

    #[test]
    fn a_verification_recorded_late_does_not_replace_a_further_one() {
        let mut schedule = Schedule::genesis(VersionHash::of(b"a"));
        let b = deploy(&mut schedule, b"b", 5);
        verified(&mut schedule, b, 3, 20);
        let older = Verification {
            through: 10,
            batches: 5,
            differing: 0,
        };
        let change = VersionChange::Verified {
            hash: b,
            verification: older,
        };
        assert_eq!(
            schedule.apply(&change, 21),
            VersionOutcome::Refused(VersionRefused::OlderVerification {
                hash: b,
                through: 19
            })
        );
        assert_eq!(
            activate(&mut schedule, b, None, None, 22),
            VersionOutcome::Refused(VersionRefused::NotVerified(b))
        );
    }

    #[test]
    fn a_verification_of_a_window_stands_like_one_from_genesis() {
        let mut schedule = Schedule::genesis(VersionHash::of(b"a"));
        let b = deploy(&mut schedule, b"b", 5);
        let window = |differing| VersionChange::VerifiedWindow {
            hash: b,
            from: 3,
            verification: Verification {
                through: 9,
                batches: 4,
                differing,
            },
        };
        assert_eq!(
            schedule.apply(&window(1), 10),
            VersionOutcome::Verified { hash: b }
        );
        assert_eq!(
            activate(&mut schedule, b, None, None, 11),
            VersionOutcome::Refused(VersionRefused::NotVerified(b))
        );
        assert_eq!(
            schedule.apply(&window(0), 12),
            VersionOutcome::Verified { hash: b }
        );
        assert_eq!(
            activate(&mut schedule, b, None, None, 13),
            VersionOutcome::Activated { hash: b, from: 14 }
        );
    }

    #[test]
    fn a_scheduled_activation_can_be_cancelled_until_the_log_reaches_it() {
        let mut schedule = Schedule::genesis(VersionHash::of(b"a"));
        let b = deploy(&mut schedule, b"b", 5);
        let c = deploy(&mut schedule, b"c", 6);
        let cancel = |hash| VersionChange::Cancel { hash };
        assert_eq!(
            activate(&mut schedule, b, Some(1_000_000), Some("typo"), 7),
            VersionOutcome::Activated {
                hash: b,
                from: 1_000_000
            }
        );
        assert_eq!(
            schedule.apply(&cancel(c), 8),
            VersionOutcome::Refused(VersionRefused::NotScheduled(c))
        );
        assert_eq!(
            schedule.apply(&cancel(b), 9),
            VersionOutcome::Cancelled {
                hash: b,
                from: 1_000_000
            }
        );
        assert_eq!(schedule.version_at(1_000_000), Some(VersionHash::of(b"a")));
        assert_eq!(
            activate(&mut schedule, c, None, Some("now"), 10),
            VersionOutcome::Activated { hash: c, from: 11 }
        );
        // Once the log reaches an activation, it stands.
        assert_eq!(
            activate(&mut schedule, b, Some(20), Some("later"), 12),
            VersionOutcome::Activated { hash: b, from: 20 }
        );
        let before = schedule.clone();
        assert_eq!(
            schedule.apply(&cancel(b), 20),
            VersionOutcome::Refused(VersionRefused::NotScheduled(b))
        );
        assert_eq!(schedule, before);
    }

    #[test]
    fn nothing_changes_for_an_unknown_version() {
        let mut schedule = Schedule::genesis(VersionHash::of(b"a"));
        let before = schedule.clone();
        let unknown = VersionHash::of(b"z");
        assert_eq!(
            activate(&mut schedule, unknown, None, Some("x"), 3),
            VersionOutcome::Refused(VersionRefused::NotDeployed(unknown))
        );
        let verification = Verification {
            through: 2,
            batches: 1,
            differing: 0,
        };
        let change = VersionChange::Verified {
            hash: unknown,
            verification,
        };
        assert_eq!(
            schedule.apply(&change, 4),
            VersionOutcome::Refused(VersionRefused::NotDeployed(unknown))
        );
        assert_eq!(schedule, before);
    }
}

//! openraft's storage conformance suite against the wallet's log store and
//! state machine, each built fresh in a temporary directory.

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use std::sync::{Arc, OnceLock};
use wallet_host::log::LogOptions;
use wallet_host::node::{Holdings, PartitionMap};
use wallet_host::partition::split::Births;
use wallet_host::raft::{Durable, LogStore, Snapshots, StateMachine, TypeConfig};
use wallet_host::rocks::{Cache, Tuning};
use wallet_host::sm::{Executor, new_engine};
use wallet_host::store::{Store, StoreOptions};
use wasmtime::Engine;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| new_engine(None).expect("engine"))
}

/// The suite purges entries no state machine applied: it tests the log
/// store's contract alone, so here everything counts as durable.
struct AllDurable;

impl Durable for AllDurable {
    fn flush(&self) -> wallet_host::Result<u64> {
        Ok(u64::MAX)
    }

    fn applied(&self) -> u64 {
        u64::MAX
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        flush_bytes: 1 << 20,
        cache_bytes: 1 << 20,
        segment_bytes: 1 << 20,
        tuning: Tuning {
            write_buffer_bytes: 4 << 20,
            write_buffers_max: 4,
            block_cache: Cache::new_lru_cache(1 << 20),
        },
    }
}

struct Fresh;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Fresh {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_options = LogOptions {
            segment_bytes: 1 << 20,
        };
        let log = LogStore::open(&dir.path().join("raft"), log_options, Arc::new(AllDurable))
            .expect("log store opens");
        let store =
            Arc::new(Store::open(&dir.path().join("state"), &options()).expect("store opens"));
        let snapshots =
            Snapshots::open(store.clone(), dir.path().join("snapshots")).expect("snapshots open");
        let only_one = Holdings::new(&PartitionMap::new(1), 0);
        let births = Births {
            dir: dir.path().to_path_buf(),
            options: options(),
        };
        let state_machine = StateMachine::new(
            store,
            Executor::new(engine()),
            only_one,
            snapshots,
            log.clone(),
            births,
        );
        Ok((dir, log, state_machine))
    }
}

type Conformance = Suite<TypeConfig, LogStore, StateMachine, Fresh, tempfile::TempDir>;

/// Runs each named suite test on freshly built stores.
macro_rules! conformance {
    ($($test:ident)*) => {
        $(
            #[test]
            fn $test() {
                let run = async {
                    let (_dir, log, sm) = Fresh.build().await?;
                    Conformance::$test(log, sm).await
                };
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                runtime.block_on(run).expect(stringify!($test));
            }
        )*
    };
}

// Every test of `Suite::test_store`. (Snapshots between members travel as
// a stream, tested end to end in `tests/server/cluster.rs`.)
conformance! {
    last_membership_in_log_initial last_membership_in_log last_membership_in_log_multi_step
    get_membership_initial get_membership_from_log_and_empty_sm
    get_membership_from_empty_log_and_sm get_membership_from_log_le_sm_last_applied
    get_membership_from_log_gt_sm_last_applied_1 get_membership_from_log_gt_sm_last_applied_2
    get_initial_state_without_init get_initial_state_membership_from_log_and_sm
    get_initial_state_with_state get_initial_state_last_log_gt_sm
    get_initial_state_last_log_lt_sm get_initial_state_log_ids
    get_initial_state_re_apply_committed save_vote get_log_entries limited_get_log_entries
    try_get_log_entry initial_logs get_log_state get_log_id last_id_in_log last_applied_state
    purge_logs_upto_0 purge_logs_upto_5 purge_logs_upto_20 delete_logs_since_11
    delete_logs_since_0 append_to_log snapshot_meta apply_single apply_multiple
}

#[test]
fn transfer_snapshot() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(Conformance::transfer_snapshot(&Fresh))
        .expect("transfer_snapshot");
}

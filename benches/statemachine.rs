//! Transfers per second through the wasm component and through the same
//! rules compiled natively, over 10,000 and 1,000,000 accounts, in batches of
//! 1, 100, 1,000 and 8,190. Criterion measures each case; a closing table
//! runs both back to back and prints transfers/s and the wasm/native ratio.
//!
//!     cargo bench --bench statemachine
//!
//! `WALLET_BENCH_QUICK=1` limits it to 10,000 accounts.

use criterion::{BenchmarkId, Criterion, Throughput};
use guest_statemachine as native;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use wallet_host::sm::{self, MemoryState, Runtime, Version, new_engine, release_bytes};

const BATCHES: [usize; 4] = [1, 100, 1_000, 8_190];
const SYSTEM: &str = "external:bank";
const SEED: u64 = 0x5eed_0f5a_11e7;

/// splitmix64: every random choice flows from `SEED`.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One transfer, in neutral terms, turned into either side's command type.
struct Spec {
    id: u128,
    from: String,
    to: String,
    amount: i64,
}

fn account_name(i: u64) -> String {
    format!("acct-{i:07}")
}

/// A generator of fresh transfers among `accounts` accounts.
struct Load {
    rng: Rng,
    accounts: u64,
    next_id: u128,
}

impl Load {
    fn new(accounts: u64) -> Self {
        Load {
            rng: Rng(SEED),
            accounts,
            next_id: 1 << 64,
        }
    }
    fn batch(&mut self, n: usize) -> Vec<Spec> {
        (0..n)
            .map(|_| {
                let from = self.rng.next() % self.accounts;
                let to = (from + 1 + self.rng.next() % (self.accounts - 1)) % self.accounts;
                self.next_id += 1;
                Spec {
                    id: self.next_id,
                    from: account_name(from),
                    to: account_name(to),
                    amount: 1 + (self.rng.next() % 100) as i64,
                }
            })
            .collect()
    }
}

/// Account opening and funding: (kind, account) opens, then deposits.
fn setup_specs(accounts: u64) -> (Vec<(bool, String)>, Vec<Spec>) {
    let mut opens = vec![(true, SYSTEM.to_string())];
    opens.extend((0..accounts).map(|i| (false, account_name(i))));
    let deposits = (0..accounts)
        .map(|i| Spec {
            id: u128::from(i) + 1,
            from: SYSTEM.into(),
            to: account_name(i),
            amount: 1_000_000,
        })
        .collect();
    (opens, deposits)
}

/// Which command a spec becomes.
#[derive(Clone, Copy)]
enum Kind {
    Deposit,
    Transfer,
}

/// One side of the comparison: its own command type, built from the same
/// specs and run in chunks of the batch limit.
trait Engine {
    type Command;
    fn open_command(system: bool, account: &str) -> Self::Command;
    fn move_command(kind: Kind, spec: &Spec) -> Self::Command;
    /// Runs one batch; how many commands succeeded.
    fn run(&mut self, commands: &[Self::Command]) -> usize;

    fn run_all(&mut self, commands: Vec<Self::Command>) {
        for chunk in commands.chunks(sm::limits::BATCH_COMMANDS_MAX) {
            assert_eq!(self.run(chunk), chunk.len(), "setup commands succeed");
        }
    }
    fn open(&mut self, opens: &[(bool, String)]) {
        let commands = opens
            .iter()
            .map(|(s, a)| Self::open_command(*s, a))
            .collect();
        self.run_all(commands);
    }
    fn deposit(&mut self, specs: &[Spec]) {
        let commands = specs
            .iter()
            .map(|s| Self::move_command(Kind::Deposit, s))
            .collect();
        self.run_all(commands);
    }
    fn transfer(&mut self, specs: &[Spec]) -> usize {
        let commands: Vec<_> = specs
            .iter()
            .map(|s| Self::move_command(Kind::Transfer, s))
            .collect();
        self.run(&commands)
    }
}

struct Wasm(Runtime<MemoryState>);

impl Engine for Wasm {
    type Command = sm::Command;

    fn open_command(system: bool, account: &str) -> sm::Command {
        sm::Command::OpenAccount(sm::OpenAccount {
            account: account.into(),
            owner: None,
            kind: if system {
                sm::AccountKind::System
            } else {
                sm::AccountKind::Standard
            },
        })
    }

    fn move_command(kind: Kind, s: &Spec) -> sm::Command {
        let t = sm::Transfer {
            id: sm::Txid::from_u128(s.id),
            from: s.from.clone(),
            to: s.to.clone(),
            amount: s.amount,
            currency: "USD".into(),
        };
        match kind {
            Kind::Deposit => sm::Command::Deposit(t),
            Kind::Transfer => sm::Command::Transfer(t),
        }
    }

    fn run(&mut self, commands: &[sm::Command]) -> usize {
        let header = sm::BatchHeader {
            log_index: 1,
            timestamp_ms: 0,
            partition: 0,
        };
        match self.0.execute(header, commands).expect("executes") {
            sm::BatchResult::Applied { output, writes, .. } => {
                self.0.source_mut().expect("live").apply(&writes);
                output.outcomes.iter().filter(|o| o.is_ok()).count()
            }
            sm::BatchResult::Failed(f) => panic!("batch failed: {f:?}"),
        }
    }
}

/// The guest's rules compiled for this machine, over a hash map.
#[derive(Default)]
struct Native(HashMap<Vec<u8>, Vec<u8>>);

impl native::Kv for Native {
    fn read(&mut self, keys: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
        keys.iter().map(|k| self.0.get(k).cloned()).collect()
    }
    fn write(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) {
        for (k, v) in entries {
            match v {
                Some(v) => self.0.insert(k.clone(), v.clone()),
                None => self.0.remove(k),
            };
        }
    }
}

impl Engine for Native {
    type Command = native::Command;

    fn open_command(system: bool, account: &str) -> native::Command {
        native::Command::OpenAccount(native::OpenAccount {
            account: account.into(),
            owner: None,
            kind: if system {
                native::AccountKind::System
            } else {
                native::AccountKind::Standard
            },
        })
    }

    fn move_command(kind: Kind, s: &Spec) -> native::Command {
        let t = native::Transfer {
            id: native::Txid {
                hi: (s.id >> 64) as u64,
                lo: s.id as u64,
            },
            from: s.from.clone(),
            to: s.to.clone(),
            amount: s.amount,
            currency: "USD".into(),
        };
        match kind {
            Kind::Deposit => native::Command::Deposit(t),
            Kind::Transfer => native::Command::Transfer(t),
        }
    }

    fn run(&mut self, commands: &[native::Command]) -> usize {
        let header = native::BatchHeader {
            log_index: 1,
            timestamp_ms: 0,
            partition: 0,
        };
        let output = native::execute(&header, commands, self);
        output.outcomes.iter().filter(|o| o.is_ok()).count()
    }
}

fn prepared<E: Engine>(mut engine: E, accounts: u64) -> E {
    let (opens, deposits) = setup_specs(accounts);
    engine.open(&opens);
    engine.deposit(&deposits);
    engine
}

fn new_wasm(accounts: u64) -> Wasm {
    let engine = new_engine(None).expect("engine");
    let version = Version::compile(&engine, release_bytes()).expect("release compiles");
    let runtime = Runtime::new(&engine, version, MemoryState::default()).expect("instantiates");
    prepared(Wasm(runtime), accounts)
}

fn account_counts() -> Vec<u64> {
    if std::env::var_os("WALLET_BENCH_QUICK").is_some() {
        vec![10_000]
    } else {
        vec![10_000, 1_000_000]
    }
}

fn bench_case<E: Engine>(c: &mut Criterion, name: &str, engine: &mut E, accounts: u64) {
    let mut group = c.benchmark_group(format!("{name}/accounts={accounts}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    let mut load = Load::new(accounts);
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("batch", batch), |b| {
            b.iter_batched(
                || load.batch(batch),
                |specs| black_box(engine.transfer(&specs)),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Transfers per second over `rounds` batches of `batch` (generation
/// excluded).
fn rate<E: Engine>(engine: &mut E, load: &mut Load, batch: usize, rounds: usize) -> f64 {
    let mut busy = Duration::ZERO;
    let mut moved = 0;
    for _ in 0..rounds {
        let specs = load.batch(batch);
        let start = Instant::now();
        moved += engine.transfer(&specs);
        busy += start.elapsed();
    }
    assert_eq!(moved, batch * rounds, "every transfer is funded and valid");
    (batch * rounds) as f64 / busy.as_secs_f64()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut table = Vec::new();
    for accounts in account_counts() {
        let mut wasm = new_wasm(accounts);
        let mut nat = prepared(Native::default(), accounts);
        bench_case(&mut c, "wasm", &mut wasm, accounts);
        bench_case(&mut c, "native", &mut nat, accounts);
        for batch in BATCHES {
            let rounds = (200_000 / batch).clamp(5, 20_000);
            let (mut lw, mut ln) = (Load::new(accounts), Load::new(accounts));
            lw.next_id = 1 << 80;
            ln.next_id = 1 << 80;
            let w = rate(&mut wasm, &mut lw, batch, rounds);
            let n = rate(&mut nat, &mut ln, batch, rounds);
            table.push((accounts, batch, w, n));
        }
    }
    c.final_summary();
    println!("\n| accounts | batch | wasm transfers/s | native transfers/s | wasm/native time |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for (accounts, batch, w, n) in table {
        println!("| {accounts} | {batch} | {w:.0} | {n:.0} | {:.2}x |", n / w);
    }
}

//! Transfers per second through the wasm component and through the same
//! rules compiled natively, over 10,000 and 1,000,000 accounts, in batches of
//! 1, 100, 1,000 and 8,190. Criterion measures each case; a closing table
//! runs both back to back and prints transfers/s and the wasm/native ratio,
//! for the rules alone (prefetch and execute, arguments and answers across
//! the sandbox's boundary included) and with the host's in-memory state
//! (reading the keys prefetch names, applying the writes) added.
//!
//!     cargo bench --bench statemachine
//!
//! `WALLET_BENCH_QUICK=1` limits it to 10,000 accounts.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use wallet_core::codec::{self, Calls, ValuesWriter};
use wallet_core::{
    AccountKind, Call, Caller, Command, Currency, OpenAccount, Role, Transfer, Txid,
};
use wallet_host::Result;
use wallet_host::sm::{
    BatchHeader, Executed, MemoryState, Runtime, StateSource, Version, limits, new_engine,
    release_bytes,
};

const BATCHES: [usize; 4] = [1, 100, 1_000, 8_190];
const SYSTEM: &str = "external:bank";
const SEED: u64 = 0x5eed_0f5a_11e7;
const ADMIN: Caller<&str> = Caller {
    role: Role::Admin,
    principal: "admin",
};

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

/// Encoded calls, the way the edge hands them to the state machine.
fn encode(commands: impl IntoIterator<Item = Command<String>>) -> Vec<u8> {
    let mut calls = Calls::new();
    for command in commands {
        let call = Call {
            caller: ADMIN,
            command: command.borrowed(),
        };
        calls.push(&call).expect("encodes");
    }
    calls.into_bytes()
}

fn open(system: bool, account: &str) -> Command<String> {
    Command::OpenAccount(OpenAccount {
        account: account.into(),
        owner: None,
        kind: if system {
            AccountKind::System
        } else {
            AccountKind::Standard
        },
    })
}

fn transfer(s: &Spec) -> Transfer<String> {
    Transfer {
        id: Txid(s.id),
        from: s.from.clone(),
        to: s.to.clone(),
        amount: s.amount,
        currency: Currency(*b"USD"),
    }
}

const HEADER: BatchHeader = BatchHeader {
    log_index: 1,
    timestamp_ms: 0,
    partition: 0,
};

/// The host's in-memory state, with the time spent in it.
#[derive(Default)]
struct Timed {
    state: MemoryState,
    spent: Duration,
}

impl Timed {
    fn apply<'a>(&mut self, writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>) {
        let start = Instant::now();
        self.state.apply(writes);
        self.spent += start.elapsed();
    }
}

impl StateSource for Timed {
    fn read(&mut self, keys: &[&[u8]], values: &mut ValuesWriter) -> Result<()> {
        let start = Instant::now();
        let read = self.state.read(keys, values);
        self.spent += start.elapsed();
        read
    }
}

/// One side of the comparison: runs encoded batches over its own state.
trait Engine {
    /// Runs one batch; how many calls succeeded.
    fn run(&mut self, calls: &[u8]) -> usize;

    /// Time spent in the state so far.
    fn state_time(&self) -> Duration;

    fn run_all(&mut self, commands: Vec<Command<String>>) {
        for chunk in commands.chunks(limits::BATCH_COMMANDS_MAX) {
            assert_eq!(
                self.run(&encode(chunk.iter().cloned())),
                chunk.len(),
                "setup succeeds"
            );
        }
    }

    fn prepare(&mut self, accounts: u64) {
        let (opens, deposits) = setup_specs(accounts);
        self.run_all(opens.iter().map(|(s, a)| open(*s, a)).collect());
        self.run_all(
            deposits
                .iter()
                .map(|s| Command::Deposit(transfer(s)))
                .collect(),
        );
    }
}

/// The release component in the sandbox.
struct Wasm {
    runtime: Runtime,
    state: Timed,
}

impl Engine for Wasm {
    fn run(&mut self, calls: &[u8]) -> usize {
        match self
            .runtime
            .execute(HEADER, calls, &mut self.state)
            .expect("executes")
        {
            Executed::Applied(answer) => {
                self.state.apply(answer.writes());
                answer.outcomes().iter().filter(|o| o.is_ok()).count()
            }
            Executed::Failed(f) => panic!("batch failed: {f}"),
        }
    }

    fn state_time(&self) -> Duration {
        self.state.spent
    }
}

/// The same rules compiled for this machine, with the same prefetch rounds
/// over the same state.
#[derive(Default)]
struct Native {
    state: Timed,
}

impl Engine for Native {
    fn run(&mut self, calls: &[u8]) -> usize {
        let header = guest_statemachine::BatchHeader {
            log_index: 1,
            timestamp_ms: 0,
            partition: 0,
        };
        let mut values = ValuesWriter::default();
        loop {
            let answer = guest_statemachine::prefetch(&header, calls, values.as_bytes());
            let prefetch = codec::prefetch(&answer).expect("decodes");
            self.state.read(&prefetch.keys, &mut values).expect("reads");
            if prefetch.complete {
                break;
            }
        }
        let answer = guest_statemachine::execute(&header, calls, values.as_bytes());
        let count = codec::calls_count(calls).expect("counts");
        let output = codec::output(&answer, count).expect("well formed");
        self.state.apply(output.writes.iter().copied());
        output.outcomes.iter().filter(|o| o.is_ok()).count()
    }

    fn state_time(&self) -> Duration {
        self.state.spent
    }
}

fn new_wasm(accounts: u64) -> Wasm {
    let engine = new_engine(None).expect("engine");
    let version = Version::compile(&engine, release_bytes()).expect("release compiles");
    let runtime = Runtime::new(&engine, version).expect("instantiates");
    let mut wasm = Wasm {
        runtime,
        state: Timed::default(),
    };
    wasm.prepare(accounts);
    wasm
}

fn new_native(accounts: u64) -> Native {
    let mut native = Native::default();
    native.prepare(accounts);
    native
}

fn account_counts() -> Vec<u64> {
    if std::env::var_os("WALLET_BENCH_QUICK").is_some() {
        vec![10_000]
    } else {
        vec![10_000, 1_000_000]
    }
}

fn transfers(load: &mut Load, batch: usize) -> Vec<u8> {
    encode(
        load.batch(batch)
            .iter()
            .map(|s| Command::Transfer(transfer(s))),
    )
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
                || transfers(&mut load, batch),
                |calls| black_box(engine.run(&calls)),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Transfers per second over `rounds` batches of `batch`: by the rules
/// alone, and with the state's reads and writes (generation and encoding
/// excluded: they are the edge's work).
fn rate<E: Engine>(engine: &mut E, load: &mut Load, batch: usize, rounds: usize) -> (f64, f64) {
    let mut busy = Duration::ZERO;
    let mut moved = 0;
    let in_state = engine.state_time();
    for _ in 0..rounds {
        let calls = transfers(load, batch);
        let start = Instant::now();
        moved += engine.run(&calls);
        busy += start.elapsed();
    }
    assert_eq!(moved, batch * rounds, "every transfer is funded and valid");
    let rules = busy - (engine.state_time() - in_state);
    let n = (batch * rounds) as f64;
    (n / rules.as_secs_f64(), n / busy.as_secs_f64())
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut table = Vec::new();
    for accounts in account_counts() {
        let mut wasm = new_wasm(accounts);
        let mut nat = new_native(accounts);
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
    println!(
        "\n| accounts | batch | rules: wasm/s | rules: native/s | wasm/native time \
         | with state: wasm/s | with state: native/s |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (accounts, batch, (w, ws), (n, ns)) in table {
        println!(
            "| {accounts} | {batch} | {w:.0} | {n:.0} | {:.2}x | {ws:.0} | {ns:.0} |",
            n / w
        );
    }
}

//! What the benchmark sends: validated settings, account choice, amounts,
//! ids and request bodies. Everything here is pure, so it is unit-tested.

use std::time::Duration;

use anyhow::{bail, ensure};
use serde::Serialize;
use uuid::Uuid;

use super::BenchArgs;
use super::rng::{SplitMix64, fnv1a, mix};

/// The batch endpoint's maximum number of transfers per request.
pub const MAX_BATCH: usize = wallet_core::limits::BATCH_COMMANDS_MAX;

const MAX_ACCOUNT_ID_LEN: usize = wallet_core::account::ACCOUNT_ID_LEN_MAX;

/// Each bench account is funded with this many major units, so that random
/// transfers of at most 100 minor units never run an account dry.
const FUNDING_MAJOR_UNITS: u64 = 1_000_000;

/// The largest transfer, in minor units ("1.00" in a two-digit currency).
const MAX_TRANSFER_MINOR_UNITS: u64 = 100;

/// The run's settings after validation, in the units the code uses.
#[derive(Debug, Clone)]
pub struct Plan {
    pub clients: usize,
    pub duration: Duration,
    pub accounts: u64,
    pub batch: usize,
    pub hot_share: f64,
    /// The server's partition map and the share of transfers across it.
    pub cross: Option<(wallet_host::node::PartitionMap, f64)>,
    pub currency: String,
    /// Digits after the decimal point for `currency` (USD 2, JPY 0, BHD 3).
    pub minor_digits: u32,
    pub prefix: String,
    pub seed: u64,
    pub setup_concurrency: usize,
}

impl Plan {
    /// Checks the arguments up front, so that a typo fails in milliseconds
    /// instead of after setting up 100,000 accounts.
    pub fn from_args(args: &BenchArgs) -> anyhow::Result<Self> {
        ensure!(args.clients >= 1, "--clients must be at least 1");
        ensure!(args.duration >= 1, "--duration must be at least 1 second");
        ensure!(args.accounts >= 2, "--accounts must be at least 2");
        ensure!(
            args.batch <= MAX_BATCH,
            "--batch must be at most {MAX_BATCH}"
        );
        ensure!(
            (0.0..=1.0).contains(&args.hot_share),
            "--hot-share must be between 0 and 1"
        );
        ensure!(
            args.setup_concurrency >= 1,
            "--setup-concurrency must be at least 1"
        );
        let currency = args.currency.to_ascii_uppercase();
        let Some(minor_digits) = wallet_core::currency::exponent(&currency) else {
            bail!(
                "--currency must be an ISO 4217 code with a minor unit, got {:?}",
                args.currency
            );
        };
        check_prefix(&args.prefix, args.accounts)?;
        let cross = match (args.partitions, args.cross_share) {
            (Some(count), Some(share)) => {
                ensure!(
                    (1..=wallet_host::node::PARTITIONS_MAX).contains(&count),
                    "--partitions must be 1 to {}",
                    wallet_host::node::PARTITIONS_MAX
                );
                Some((wallet_host::node::PartitionMap::new(count), share))
            }
            _ => None,
        };
        Ok(Self {
            clients: args.clients,
            duration: Duration::from_secs(args.duration),
            accounts: args.accounts,
            batch: args.batch,
            hot_share: args.hot_share,
            cross,
            minor_digits: u32::from(minor_digits),
            currency,
            prefix: args.prefix.clone(),
            seed: args.seed,
            setup_concurrency: args.setup_concurrency,
        })
    }

    /// Transfers carried by one request.
    pub fn transfers_per_request(&self) -> usize {
        self.batch.max(1)
    }

    /// The id of bench account `i`.
    pub fn account_id(&self, i: u64) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// What each account is funded with, as a decimal string.
    pub fn funding_amount(&self) -> String {
        format_minor(self.funding_minor(), self.minor_digits)
    }

    /// The deposit into account 0 that funds every account (account 0
    /// then passes each other account its share), as a decimal string.
    pub fn pool_amount(&self) -> String {
        format_minor(self.funding_minor() * self.accounts, self.minor_digits)
    }

    fn funding_minor(&self) -> u64 {
        FUNDING_MAJOR_UNITS * 10u64.pow(self.minor_digits)
    }

    /// One random transfer: distinct accounts, 1 to 100 minor units, and an
    /// id that no earlier run has used.
    pub fn transfer<'a>(&'a self, rng: &mut SplitMix64, ids: &mut IdGen) -> TransferBody<'a> {
        let (from, to) = match &self.cross {
            Some((map, share)) => {
                let across = rng.next_f64() < *share;
                let partition = |i| map.of(&self.account_id(i));
                // Drawn again until the pair is on the chosen side of the
                // map (bounded: with one partition nothing is across).
                let mut pair = pick_pair(rng, self.accounts, 0.0);
                for _ in 0..256 {
                    if (partition(pair.0) != partition(pair.1)) == across {
                        break;
                    }
                    pair = pick_pair(rng, self.accounts, 0.0);
                }
                pair
            }
            None => pick_pair(rng, self.accounts, self.hot_share),
        };
        let minor = 1 + rng.below(MAX_TRANSFER_MINOR_UNITS);
        TransferBody {
            from_account: self.account_id(from),
            to_account: self.account_id(to),
            amount: format_minor(minor, self.minor_digits),
            currency: &self.currency,
            transaction_id: ids.next_id(),
        }
    }

    /// The transaction id of the transfer that funds account `i` (from
    /// account 0), derived from the prefix, currency and index rather than
    /// drawn at random: running setup twice then replays the same ids,
    /// which the server deduplicates, so a repeated setup never funds an
    /// account twice.
    pub fn funding_id(&self, i: u64) -> String {
        self.setup_id("bench-funding", i)
    }

    /// The transaction id of the pool deposit, which depends on how many
    /// accounts it funds (a setup for more accounts deposits again).
    pub fn pool_deposit_id(&self) -> String {
        self.setup_id("bench-pool", self.accounts)
    }

    fn setup_id(&self, what: &str, n: u64) -> String {
        let name = format!("{what}\0{}\0{}", self.prefix, self.currency);
        let mut rng = SplitMix64::new(fnv1a(name.as_bytes()) ^ mix(n));
        uuid_from(rng.next_u64(), rng.next_u64())
    }
}

/// Rejects prefixes that would make account ids the server refuses
/// (1 to 64 characters of `A-Za-z0-9_.:-`).
fn check_prefix(prefix: &str, accounts: u64) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:-".contains(c);
    if prefix.is_empty() || !prefix.chars().all(allowed) {
        bail!("--prefix must be non-empty and use only A-Za-z0-9_.:- (got {prefix:?})");
    }
    let longest = prefix.len() + 1 + (accounts - 1).to_string().len();
    ensure!(
        longest <= MAX_ACCOUNT_ID_LEN,
        "--prefix is too long: account ids would reach {longest} characters (max {MAX_ACCOUNT_ID_LEN})"
    );
    Ok(())
}

/// Chooses two distinct accounts in `0..accounts` (`accounts >= 2`). With
/// probability `hot_share` one side, debit or credit with equal odds, is
/// account 0, which models contention on one popular wallet.
pub fn pick_pair(rng: &mut SplitMix64, accounts: u64, hot_share: f64) -> (u64, u64) {
    if rng.next_f64() < hot_share {
        let other = 1 + rng.below(accounts - 1);
        return if rng.next_u64() & 1 == 0 {
            (0, other)
        } else {
            (other, 0)
        };
    }
    let from = rng.below(accounts);
    // Draw from the remaining accounts-1 and skip over `from`: distinct
    // without a retry loop.
    let mut to = rng.below(accounts - 1);
    if to >= from {
        to += 1;
    }
    (from, to)
}

/// Formats an integer number of minor units as the API's decimal string,
/// without ever going through floating point.
pub fn format_minor(units: u64, digits: u32) -> String {
    if digits == 0 {
        return units.to_string();
    }
    let scale = 10u64.pow(digits);
    let width = digits as usize;
    format!("{}.{:0width$}", units / scale, units % scale)
}

/// A version-4 UUID string from 128 bits.
fn uuid_from(hi: u64, lo: u64) -> String {
    let bytes = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Transaction ids for transfers: a seeded stream mixed with a nonce drawn
/// once per run from the OS. The nonce makes every run's ids fresh (a rerun
/// with the same seed must not be answered from the idempotency table), and
/// the stream avoids one OS random call per transfer, which matters when a
/// single request carries 8,190 transfers.
#[derive(Debug, Clone)]
pub struct IdGen {
    rng: SplitMix64,
}

impl IdGen {
    /// A generator for one client; `run_nonce` is shared by the run and
    /// `stream` differs per client.
    pub fn new(run_nonce: u64, stream: u64) -> Self {
        Self {
            rng: SplitMix64::new(mix(run_nonce) ^ mix(stream)),
        }
    }

    /// A nonce for [`IdGen::new`], fresh for each run.
    pub fn run_nonce() -> u64 {
        Uuid::new_v4().as_u64_pair().0
    }

    /// The next transaction id.
    pub fn next_id(&mut self) -> String {
        let hi = self.rng.next_u64();
        let lo = self.rng.next_u64();
        uuid_from(hi, lo)
    }
}

/// The body of `POST /v1/wallet/balance_transfer`, and one item of the
/// batch endpoint.
#[derive(Debug, Serialize)]
pub struct TransferBody<'a> {
    pub from_account: String,
    pub to_account: String,
    pub amount: String,
    pub currency: &'a str,
    pub transaction_id: String,
}

/// The body of `POST /v1/wallet/balance_transfers`.
#[derive(Debug, Serialize)]
pub struct BatchBody<'a> {
    pub transfers: Vec<TransferBody<'a>>,
}

/// One account of `POST /v1/wallet/account_openings`.
#[derive(Debug, Serialize)]
pub struct NewAccountBody {
    pub account_id: String,
}

/// The body of `POST /v1/wallet/account_openings`.
#[derive(Debug, Serialize)]
pub struct OpeningsBody {
    pub accounts: Vec<NewAccountBody>,
}

/// The body of `POST /v1/wallet/deposit`.
#[derive(Debug, Serialize)]
pub struct DepositBody<'a> {
    pub account_id: &'a str,
    pub amount: &'a str,
    pub currency: &'a str,
    pub transaction_id: &'a str,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn args(extra: &[&str]) -> BenchArgs {
        let argv = std::iter::once("bench").chain(extra.iter().copied());
        Cli::try_parse_from(argv).expect("arguments parse").args
    }

    #[test]
    fn defaults_match_the_brief() {
        let a = args(&[]);
        assert_eq!(a.target, "http://127.0.0.1:8080");
        assert_eq!(a.clients, 64);
        assert_eq!(a.duration, 10);
        assert_eq!(a.accounts, 100_000);
        assert_eq!(a.batch, 0);
        assert_eq!(a.hot_share, 0.0);
        assert_eq!(a.currency, "USD");
        assert!(!a.skip_setup);
        assert_eq!(a.prefix, "bench");
        let plan = Plan::from_args(&a).expect("defaults are valid");
        assert_eq!(plan.transfers_per_request(), 1);
        assert_eq!(plan.funding_amount(), "1000000.00");
        assert_eq!(plan.pool_amount(), "100000000000.00");
    }

    #[test]
    fn invalid_settings_are_refused() {
        for bad in [
            &["--batch", "8191"][..],
            &["--accounts", "1"],
            &["--clients", "0"],
            &["--duration", "0"],
            &["--currency", "US"],
            &["--prefix", "bad prefix"],
            &["--prefix", ""],
        ] {
            assert!(Plan::from_args(&args(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(Cli::try_parse_from(["bench", "--hot-share", "1.5"]).is_err());
        // 100,000 accounts: the longest id is "{prefix}-99999".
        let too_long = "p".repeat(59);
        assert!(Plan::from_args(&args(&["--prefix", &too_long])).is_err());
        let fits = "p".repeat(58);
        assert!(Plan::from_args(&args(&["--prefix", &fits])).is_ok());
        assert!(Plan::from_args(&args(&["--batch", "8190"])).is_ok());
    }

    #[test]
    fn pairs_are_distinct_and_in_range() {
        let mut rng = SplitMix64::new(9);
        for accounts in [2, 3, 10, 100_000] {
            for hot in [0.0, 0.5, 1.0] {
                for _ in 0..5_000 {
                    let (from, to) = pick_pair(&mut rng, accounts, hot);
                    assert_ne!(from, to);
                    assert!(from < accounts && to < accounts);
                }
            }
        }
    }

    #[test]
    fn hot_share_is_roughly_honoured() {
        let mut rng = SplitMix64::new(3);
        let n = 200_000;
        let accounts = 100_000;
        for hot in [0.0, 0.1, 0.5, 0.9, 1.0] {
            let mut touching_hot = 0u32;
            let mut hot_debits = 0u32;
            for _ in 0..n {
                let (from, to) = pick_pair(&mut rng, accounts, hot);
                if from == 0 || to == 0 {
                    touching_hot += 1;
                }
                if from == 0 {
                    hot_debits += 1;
                }
            }
            let share = f64::from(touching_hot) / f64::from(n);
            assert!((share - hot).abs() < 0.01, "hot {hot}: measured {share}");
            if touching_hot > 1_000 {
                let debit_share = f64::from(hot_debits) / f64::from(touching_hot);
                assert!((debit_share - 0.5).abs() < 0.02, "debits {debit_share}");
            }
        }
    }

    #[test]
    fn picks_are_reproducible_from_the_seed() {
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..1_000)
                .map(|_| pick_pair(&mut rng, 1_000, 0.3))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }

    #[test]
    fn amounts_are_exact_decimal_strings() {
        assert_eq!(format_minor(1, 2), "0.01");
        assert_eq!(format_minor(100, 2), "1.00");
        assert_eq!(format_minor(123_456, 2), "1234.56");
        assert_eq!(format_minor(7, 0), "7");
        assert_eq!(format_minor(5, 3), "0.005");
        let plan = Plan::from_args(&args(&["--currency", "jpy"])).expect("valid");
        assert_eq!(plan.currency, "JPY");
        assert_eq!(plan.funding_amount(), "1000000");
        let bhd = Plan::from_args(&args(&["--currency", "BHD"])).expect("valid");
        assert_eq!(bhd.minor_digits, 3);
        assert!(Plan::from_args(&args(&["--currency", "XAU"])).is_err());
    }

    #[test]
    fn transfers_use_the_plan() {
        let plan = Plan::from_args(&args(&["--accounts", "10"])).expect("valid");
        let mut rng = SplitMix64::new(1);
        let mut ids = IdGen::new(11, 0);
        for _ in 0..1_000 {
            let t = plan.transfer(&mut rng, &mut ids);
            assert_ne!(t.from_account, t.to_account);
            assert!(t.from_account.starts_with("bench-"));
            let cents: u64 = t.amount.replace('.', "").parse().expect("digits");
            assert!((1..=100).contains(&cents), "{}", t.amount);
            assert_eq!(t.currency, "USD");
        }
    }

    #[test]
    fn ids_are_v4_uuids_fresh_per_nonce_and_stream() {
        let take = |nonce, stream| {
            let mut g = IdGen::new(nonce, stream);
            (0..100).map(|_| g.next_id()).collect::<Vec<_>>()
        };
        let a = take(1, 0);
        for id in &a {
            let parsed = Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 4);
        }
        let unique: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(unique.len(), a.len());
        assert_ne!(a, take(2, 0));
        assert_ne!(a, take(1, 1));
    }

    #[test]
    fn setup_ids_are_stable_per_account_and_prefix() {
        let plan = Plan::from_args(&args(&[])).expect("valid");
        let other = Plan::from_args(&args(&["--prefix", "other"])).expect("valid");
        let more = Plan::from_args(&args(&["--accounts", "200000"])).expect("valid");
        assert_eq!(plan.funding_id(5), plan.funding_id(5));
        assert_ne!(plan.funding_id(5), plan.funding_id(6));
        assert_ne!(plan.funding_id(5), other.funding_id(5));
        assert_eq!(plan.funding_id(5), more.funding_id(5));
        assert_ne!(plan.pool_deposit_id(), more.pool_deposit_id());
        assert_ne!(plan.pool_deposit_id(), plan.funding_id(plan.accounts));
        let parsed = Uuid::parse_str(&plan.funding_id(0)).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn bodies_serialize_as_the_api_expects() {
        let body = BatchBody {
            transfers: vec![TransferBody {
                from_account: "a".into(),
                to_account: "b".into(),
                amount: "0.01".into(),
                currency: "USD",
                transaction_id: "t".into(),
            }],
        };
        let json = serde_json::to_value(&body).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"transfers": [{
                "from_account": "a", "to_account": "b", "amount": "0.01",
                "currency": "USD", "transaction_id": "t"
            }]})
        );
    }
}

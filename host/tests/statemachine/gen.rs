//! Random command sequences over a small world, so that collisions (retries,
//! conflicts, cancels before tries, overdrafts, overflows) happen often.

use proptest::prelude::*;
use wallet_host::sm::{AccountKind, Command, OpenAccount, Transfer, Txid};

pub const SYSTEM: &str = "external:bank";
pub const USERS: &[&str] = &["alice", "bob", "carol"];
pub const CREDIT: &str = "overdraft";
pub const CREDIT_LIMIT: i64 = 500;

pub fn open(account: &str, kind: AccountKind) -> Command {
    Command::OpenAccount(OpenAccount {
        account: account.into(),
        owner: Some("owner-1".into()),
        kind,
    })
}

pub fn transfer(id: u128, from: &str, to: &str, amount: i64, currency: &str) -> Transfer {
    Transfer {
        id: Txid::from_u128(id),
        from: from.into(),
        to: to.into(),
        amount,
        currency: currency.into(),
    }
}

/// Accounts and some money, with transaction ids the generator never uses.
pub fn prelude() -> Vec<Command> {
    let mut commands = vec![open(SYSTEM, AccountKind::System)];
    commands.extend(USERS.iter().map(|u| open(u, AccountKind::Standard)));
    commands.push(open(CREDIT, AccountKind::Credit(CREDIT_LIMIT)));
    for (i, user) in USERS.iter().enumerate() {
        let id = (1 << 100) + i as u128;
        commands.push(Command::Deposit(transfer(id, SYSTEM, user, 1_000, "USD")));
    }
    commands
}

fn account() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(USERS).prop_map(String::from),
        2 => Just(CREDIT.to_string()),
        2 => Just(SYSTEM.to_string()),
        1 => Just("ghost".to_string()),
        1 => Just("bad id".to_string()),
    ]
}

fn currency() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just("USD".to_string()),
        2 => Just("EUR".to_string()),
        1 => Just("JPY".to_string()),
        1 => Just("ABC".to_string()),
    ]
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        10 => 1..700i64,
        3 => prop::sample::select(&[1i64, 250, 500, 1_000][..]),
        1 => Just(0),
        1 => Just(-5),
        1 => Just(i64::MAX),
        1 => Just(i64::MAX / 2 + 1),
    ]
}

fn txid() -> impl Strategy<Value = Txid> {
    (0u64..40).prop_map(|n| Txid { hi: 7, lo: n })
}

fn body() -> impl Strategy<Value = Transfer> {
    (txid(), account(), account(), amount(), currency()).prop_map(
        |(id, from, to, amount, currency)| Transfer {
            id,
            from,
            to,
            amount,
            currency,
        },
    )
}

pub fn command() -> impl Strategy<Value = Command> {
    use Command as C;
    prop_oneof![
        6 => body().prop_map(C::Transfer),
        2 => body().prop_map(|mut t| { t.from = SYSTEM.into(); C::Deposit(t) }),
        1 => body().prop_map(C::Deposit),
        2 => body().prop_map(|mut t| { t.to = SYSTEM.into(); C::Withdraw(t) }),
        1 => body().prop_map(C::Withdraw),
        3 => body().prop_map(C::TccReserve),
        3 => body().prop_map(C::TccPlacePending),
        2 => txid().prop_map(C::TccSettle),
        2 => txid().prop_map(C::TccCredit),
        2 => txid().prop_map(C::TccRelease),
        2 => txid().prop_map(C::TccDropPending),
        2 => body().prop_map(C::SagaDebit),
        2 => body().prop_map(C::SagaCredit),
        2 => txid().prop_map(C::SagaRefund),
        1 => (account(), prop_oneof![Just(AccountKind::Standard), Just(AccountKind::Credit(-1)), Just(AccountKind::Credit(50))])
            .prop_map(|(a, kind)| open(&a, kind)),
    ]
}

/// A command, or a retry of an earlier one (its index modulo the count).
fn command_or_retry() -> impl Strategy<Value = Result<Command, usize>> {
    prop_oneof![5 => command().prop_map(Ok), 1 => any::<usize>().prop_map(Err)]
}

/// A sequence and where to cut it into batches.
pub fn batches() -> impl Strategy<Value = Vec<Vec<Command>>> {
    (
        prop::collection::vec(command_or_retry(), 1..80),
        prop::collection::vec(1usize..20, 1..80),
    )
        .prop_map(|(choices, sizes)| {
            let mut commands: Vec<Command> = Vec::with_capacity(choices.len());
            for choice in choices {
                let command = match choice {
                    Ok(command) => command,
                    Err(_) if commands.is_empty() => continue,
                    Err(k) => commands[k % commands.len()].clone(),
                };
                commands.push(command);
            }
            let mut batches = vec![prelude()];
            let mut rest = commands.as_slice();
            for size in sizes.into_iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at(size.min(rest.len()));
                batches.push(head.to_vec());
                rest = tail;
            }
            batches
        })
}

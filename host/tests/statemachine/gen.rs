//! Random call sequences over a small world, so that collisions (retries,
//! conflicts, cancels before tries, overdrafts, overflows, callers who may
//! not do what they ask) happen often.

use proptest::prelude::*;
use wallet_core::{
    AccountKind, Call, Caller, Command, Currency, OpenAccount, Role, Transfer, Txid,
};

pub type Cmd = Call<String>;

pub const SYSTEM: &str = "external:bank";
pub const USERS: &[&str] = &["alice", "bob", "carol"];
pub const CREDIT: &str = "overdraft";
pub const CREDIT_LIMIT: i64 = 500;

pub fn admin() -> Caller<String> {
    Caller {
        role: Role::Admin,
        principal: "admin".into(),
    }
}

/// The node itself, as its coordinator sends the steps after a try.
pub fn node() -> Caller<String> {
    Caller {
        role: Role::System,
        principal: "system".into(),
    }
}

pub fn client(principal: &str) -> Caller<String> {
    Caller {
        role: Role::Client,
        principal: principal.into(),
    }
}

pub fn by(caller: Caller<String>, command: Command<String>) -> Cmd {
    Call { caller, command }
}

pub fn open(account: &str, owner: Option<&str>, kind: AccountKind) -> Command<String> {
    Command::OpenAccount(OpenAccount {
        account: account.into(),
        owner: owner.map(String::from),
        kind,
    })
}

pub fn transfer(id: u128, from: &str, to: &str, amount: i64, currency: &str) -> Transfer<String> {
    Transfer {
        id: Txid(id),
        from: from.into(),
        to: to.into(),
        amount,
        currency: Currency::parse(currency).expect("three letters"),
    }
}

/// Accounts (each user owns the account of its name) and some money, with
/// transaction ids the generator never uses.
pub fn prelude() -> Vec<Cmd> {
    let mut calls = vec![by(admin(), open(SYSTEM, None, AccountKind::System))];
    for user in USERS {
        calls.push(by(admin(), open(user, Some(user), AccountKind::Standard)));
    }
    let credit = AccountKind::Credit(CREDIT_LIMIT);
    calls.push(by(admin(), open(CREDIT, Some("alice"), credit)));
    for (i, user) in USERS.iter().enumerate() {
        let id = (1 << 100) + i as u128;
        let deposit = Command::Deposit(transfer(id, SYSTEM, user, 1_000, "USD"));
        calls.push(by(admin(), deposit));
    }
    calls
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

fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![
        8 => Just(*b"USD"),
        2 => Just(*b"EUR"),
        1 => Just(*b"JPY"),
        1 => Just(*b"ABC"),
        1 => Just(*b"XAU"),
    ]
    .prop_map(Currency)
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
    (0u128..40).prop_map(|n| Txid((7 << 64) | n))
}

fn body() -> impl Strategy<Value = Transfer<String>> {
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

fn owner() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => prop::sample::select(USERS).prop_map(|u| Some(u.to_string())),
        1 => Just(None),
        1 => Just(Some("Alice Smith".to_string())),
    ]
}

fn command() -> impl Strategy<Value = Command<String>> {
    use Command as C;
    let kind = prop_oneof![
        Just(AccountKind::Standard),
        Just(AccountKind::Credit(-1)),
        Just(AccountKind::Credit(50)),
    ];
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
        1 => (account(), owner(), kind).prop_map(|(a, owner, kind)| open(&a, owner.as_deref(), kind)),
    ]
}

/// Mostly admins; clients of each user; sometimes an auditor or the node.
fn caller() -> impl Strategy<Value = Caller<String>> {
    prop_oneof![
        6 => Just(admin()),
        4 => prop::sample::select(USERS).prop_map(client),
        1 => Just(Caller { role: Role::Auditor, principal: "auditor".into() }),
        1 => Just(Caller { role: Role::System, principal: "system".into() }),
    ]
}

/// A call, or a retry of an earlier one (its index modulo the count).
fn call_or_retry() -> impl Strategy<Value = Result<Cmd, usize>> {
    let call = (caller(), command()).prop_map(|(caller, command)| Call { caller, command });
    prop_oneof![5 => call.prop_map(Ok), 1 => any::<usize>().prop_map(Err)]
}

/// A sequence and where to cut it into batches.
pub fn batches() -> impl Strategy<Value = Vec<Vec<Cmd>>> {
    (
        prop::collection::vec(call_or_retry(), 1..80),
        prop::collection::vec(1usize..20, 1..80),
    )
        .prop_map(|(choices, sizes)| {
            let mut calls: Vec<Cmd> = Vec::with_capacity(choices.len());
            for choice in choices {
                let call = match choice {
                    Ok(call) => call,
                    Err(_) if calls.is_empty() => continue,
                    Err(k) => calls[k % calls.len()].clone(),
                };
                calls.push(call);
            }
            let mut batches = vec![prelude()];
            let mut rest = calls.as_slice();
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

//! Whose each record of a whole state is, as a version that can split a
//! partition says (`wit/wallet.wit`, `splitting`): its records in key
//! order, cut into pages as a migration's are, each answered by the guest.

use super::migration::Page;
use super::{BatchFailure, Runtime};
use crate::Result;
use wallet_core::codec::{self, Belongs};

/// Shows `visit` every record of `records` (a state in key order) with
/// whose it is, page by page; the version's failure stops the walk. The
/// runtime must split (`Runtime::splits`).
pub fn for_each_owner<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    runtime: &mut Runtime,
    records: impl IntoIterator<Item = Result<(K, V)>>,
    mut visit: impl FnMut(&[u8], &[u8], Belongs<'_>) -> Result<()>,
) -> Result<Result<(), BatchFailure>> {
    let mut page = Page::default();
    for record in records {
        let (key, value) = record?;
        page.push(key.as_ref(), value.as_ref())?;
        if page.is_full()
            && let Err(failure) = ask(runtime, &mut page, &mut visit)?
        {
            return Ok(Err(failure));
        }
    }
    if page.records() > 0 {
        return ask(runtime, &mut page, &mut visit);
    }
    Ok(Ok(()))
}

/// Asks about one page, shows `visit` its records, and empties it.
fn ask(
    runtime: &mut Runtime,
    page: &mut Page,
    visit: &mut impl FnMut(&[u8], &[u8], Belongs<'_>) -> Result<()>,
) -> Result<Result<(), BatchFailure>> {
    let records = page.records();
    let bytes = page.bytes();
    let answer = match runtime.owners_page(bytes, records)? {
        Ok(answer) => answer,
        Err(failure) => return Ok(Err(failure)),
    };
    let owners = match codec::owners(&answer, records) {
        Ok(owners) => owners,
        Err(e) => {
            let why = format!("owners answer: {e}");
            return Ok(Err(BatchFailure::MalformedOutput(why)));
        }
    };
    let asked = codec::migration_writes(bytes).expect("the host wrote the page");
    for ((key, value), owner) in asked.into_iter().zip(owners) {
        visit(key, value.expect("a page holds records"), owner)?;
    }
    *page = Page::default();
    Ok(Ok(()))
}

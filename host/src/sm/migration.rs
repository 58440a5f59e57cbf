//! A version's migration (`wit/wallet.wit`, `migration`) over a whole
//! state: its records in key order, cut into pages, each rewritten by the
//! guest. Every replica, audit and verification cuts the same state into
//! the same pages, and the contract makes a record's rewrite depend on it
//! alone, so all of them make the same writes.

use super::limits::{MIGRATION_PAGE_BYTES, MIGRATION_PAGE_RECORDS};
use super::{BatchFailure, Runtime};
use crate::Result;
use wallet_core::codec;

/// A state write the host holds: set (`Some`) or delete (`None`) a key.
pub type OwnedWrite = (Vec<u8>, Option<Vec<u8>>);

/// Runs the migration of `runtime` (which must have one) over `records`,
/// every record of a state in key order; answers with its writes in the
/// order made, or the version's failure (which leaves the state as it is).
pub fn migrate<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    runtime: &mut Runtime,
    records: impl IntoIterator<Item = Result<(K, V)>>,
) -> Result<Result<Vec<OwnedWrite>, BatchFailure>> {
    let mut writes = Vec::new();
    let mut page = Page::default();
    for record in records {
        let (key, value) = record?;
        page.push(key.as_ref(), value.as_ref())?;
        if page.is_full()
            && let Err(failure) = page.run(runtime, &mut writes)?
        {
            return Ok(Err(failure));
        }
    }
    if page.records > 0
        && let Err(failure) = page.run(runtime, &mut writes)?
    {
        return Ok(Err(failure));
    }
    Ok(Ok(writes))
}

/// A page under construction: a writes section's count, then its records
/// (a migration's page, and an owners question's).
pub(super) struct Page {
    bytes: Vec<u8>,
    records: usize,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            bytes: 0u32.to_le_bytes().to_vec(),
            records: 0,
        }
    }
}

impl Page {
    pub(super) fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        codec::put_write(&mut self.bytes, key, Some(value))
            .map_err(|e| crate::Error::StateRead(format!("a stored record: {e}")))?;
        self.records += 1;
        Ok(())
    }

    pub(super) fn is_full(&self) -> bool {
        self.records == MIGRATION_PAGE_RECORDS || self.bytes.len() >= MIGRATION_PAGE_BYTES
    }

    pub(super) fn records(&self) -> usize {
        self.records
    }

    /// The page's bytes, with its count written.
    pub(super) fn bytes(&mut self) -> &[u8] {
        let count = u32::try_from(self.records).expect("pages are bounded");
        codec::patch_u32(&mut self.bytes, 0, count);
        &self.bytes
    }

    /// Migrates the page, adds its writes to `writes`, and empties it.
    fn run(
        &mut self,
        runtime: &mut Runtime,
        writes: &mut Vec<OwnedWrite>,
    ) -> Result<Result<(), BatchFailure>> {
        let records = self.records;
        let answer = match runtime.migrate_page(self.bytes(), records)? {
            Ok(answer) => answer,
            Err(failure) => return Ok(Err(failure)),
        };
        match codec::migration_writes(&answer) {
            Ok(made) => writes.extend(
                made.into_iter()
                    .map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec))),
            ),
            Err(e) => {
                let why = format!("migration answer: {e}");
                return Ok(Err(BatchFailure::MalformedOutput(why)));
            }
        }
        *self = Page::default();
        Ok(Ok(()))
    }
}

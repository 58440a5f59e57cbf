use alloc::vec::Vec;

/// The guest's view of its state: opaque keys and values, read and written
/// in bulk so that a batch crosses the sandbox boundary a few times, not once
/// per key.
pub trait Kv {
    /// The value of each key, or `None` where absent, in the order asked.
    fn read(&mut self, keys: &[Vec<u8>]) -> Vec<Option<Vec<u8>>>;
    /// Sets (`Some`) or deletes (`None`) each key, in order.
    fn write(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]);
}

//! What the server wrote to its disk during the load: `write_bytes` in
//! Linux's `/proc/PID/io`, the bytes that reached the block layer (page
//! cache write-back, RocksDB flushes and compactions included), not what
//! `write` was called with.

use anyhow::Context;

/// The process's device write counter so far.
pub fn write_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/io");
    let io = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse(&io).with_context(|| format!("no write_bytes line in {path}"))
}

fn parse(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_device_write_counter() {
        let io = "rchar: 10\nwchar: 20\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n";
        assert_eq!(parse(io), Some(4096));
        assert_eq!(parse("rchar: 1\n"), None);
    }

    #[test]
    fn this_process_has_a_counter() {
        assert!(write_bytes(std::process::id()).is_ok());
    }
}

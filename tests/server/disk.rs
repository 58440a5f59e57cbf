//! A full disk is an operating condition: writes are refused (507) before
//! the disk is full, reads keep serving, readiness says why, and writes
//! resume by themselves when space returns. Nothing acknowledged is lost.
//!
//! The test mounts a small tmpfs of its own, so it runs as root (as CI does).

use crate::harness::{ADMIN, Api, Server};
use crate::{all_balances, id};
use reqwest::StatusCode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use wallet_host::node::free_bytes;

const MIB: u64 = 1 << 20;
const FLOOR_MB: u64 = 24;

/// A tmpfs of `size_mb`, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(at: &Path, size_mb: u64) -> Mount {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(at)
            .status()
            .expect("runs mount");
        assert!(
            status.success(),
            "mounting a tmpfs (this test runs as root, as CI does)"
        );
        Mount(at.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until only `leave` bytes are free (or the disk
/// is full).
fn fill(path: &Path, leave: u64) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("filler");
    let chunk = vec![0u8; MIB as usize];
    let dir = path.parent().expect("a directory");
    while free_bytes(dir) > leave + MIB {
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
}

async fn transfer_status(api: &Api, n: usize) -> (StatusCode, String) {
    let tx = id();
    let (from, to) = (format!("acct-{}", n % 4), format!("acct-{}", (n + 1) % 4));
    let (status, body) = api.transfer(&from, &to, "0.01", &tx).await;
    if status == StatusCode::INSUFFICIENT_STORAGE {
        assert_eq!(body["error"], "insufficient_storage", "{body}");
    }
    (status, tx)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_writes_serves_reads_and_recovers_unattended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _mount = Mount::new(&dir.path().join("disk"), 160);
    let data = dir.path().join("disk/data");
    let floor = FLOOR_MB.to_string();
    let args = ["--free-space-floor-mb", floor.as_str()];
    let mut server = Server::try_start_with(&data, &args).expect("starts");
    let api = Api::new(&server);
    let mut accounts = vec!["external:bank".to_string()];
    for i in 0..4 {
        let name = format!("acct-{i}");
        api.open(&name, "owner").await;
        api.deposit(&name, "1000.00").await;
        accounts.push(name);
    }

    // Another writer takes the disk down to just above the floor; the load
    // takes it past.
    let filler = dir.path().join("disk/filler");
    fill(&filler, (FLOOR_MB + 6) * MIB);
    let mut acked = Vec::new();
    let mut refused = 0;
    for n in 0..200_000 {
        let (status, tx) = transfer_status(&api, n).await;
        match status {
            StatusCode::OK => acked.push(tx),
            StatusCode::INSUFFICIENT_STORAGE => {
                refused += 1;
                if refused == 20 {
                    break;
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused >= 20, "writes were refused at the floor");
    assert!(!acked.is_empty(), "writes were taken above the floor");

    // The disk is entirely full now: still no crash, reads serve.
    fill(&filler, 0);
    let (status, _) = transfer_status(&api, 1).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
    let (status, body) = api.get(None, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("insufficient_storage")),
        "{body}"
    );
    assert_eq!(api.get(None, "/healthz").await.0, StatusCode::OK);
    let (status, body) = api.get(Some(ADMIN), "/v1/wallet/accounts/acct-0").await;
    assert_eq!(status, StatusCode::OK, "reads keep serving: {body}");
    assert!(
        server.wait_exit(Duration::from_secs(2)).is_none(),
        "the node keeps running"
    );

    // Space returns: writes resume by themselves.
    std::fs::remove_file(&filler).expect("free the disk");
    let mut resumed = false;
    for _ in 0..100 {
        let (status, tx) = transfer_status(&api, 2).await;
        if status == StatusCode::OK {
            acked.push(tx);
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "writes resume once space returns");
    assert_eq!(api.get(None, "/readyz").await.0, StatusCode::OK);

    // Nothing acknowledged was lost, across a restart too.
    server.stop();
    let server = Server::try_start_with(&data, &args).expect("restarts");
    let api = Api::new(&server);
    api.caught_up().await;
    for tx in &acked {
        let (status, body) = api
            .get(Some(ADMIN), &format!("/v1/wallet/transfers/{tx}"))
            .await;
        assert_eq!(status, StatusCode::OK, "acknowledged {tx} is missing");
        assert_eq!(body["status"], "success");
    }
    let balances = all_balances(&api, &accounts).await;
    assert_eq!(
        balances.values().sum::<i64>(),
        0,
        "conservation: {balances:?}"
    );
}

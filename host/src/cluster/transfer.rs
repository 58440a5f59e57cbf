//! A snapshot on the wire, streamed: never held whole in memory.
//!
//! ```text
//! u32 head length, head (postcard: vote, manifest, file names and sizes,
//! the first event record sent), every file's bytes in order, the event
//! records the receiver lacks (u32 length, bytes each), and a 32-byte
//! HMAC of everything before it.
//! ```
//!
//! The request's `Wallet-Cluster-Mac` signs the head alone, so a receiver
//! refuses a stranger, or a stale leader's vote, before reading further;
//! the trailing MAC is checked before anything received is installed.

use super::{Peers, Rpc, StreamMac};
use crate::raft::{CHECKPOINT_DIR, Manifest, NodeId, SnapshotFiles};
use crate::store::EventLog;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use openraft::Vote;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Bytes read from disk per chunk sent.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks queued between the reader and the connection.
const CHUNKS_QUEUED: usize = 4;
/// The largest head accepted.
const HEAD_BYTES_MAX: usize = 1 << 20;
/// The largest event record accepted (a record holds one batch's events).
const RECORD_BYTES_MAX: usize = 256 << 20;
/// A progress line every this many bytes.
const PROGRESS_EVERY: u64 = 256 << 20;
/// The staged event records, inside a received snapshot's directory:
/// `u64 first seq`, then `u32 length, bytes` per record.
pub const EVENTS_FILE: &str = "events";

#[derive(Debug, Serialize, Deserialize)]
pub struct Head {
    pub vote: Vote<NodeId>,
    pub manifest: Manifest,
    pub files: Vec<(String, u64)>,
    /// The first event record sent; records up to `manifest.events_last`
    /// follow the files.
    pub events_from: u64,
}

/// The head of `snapshot`, for a receiver that holds event records up to
/// `receiver_events_last`.
pub fn head(
    vote: Vote<NodeId>,
    files: &SnapshotFiles,
    receiver_events_last: u64,
) -> std::io::Result<Head> {
    let manifest = files.manifest()?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(files.dir.join(CHECKPOINT_DIR))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            names.push((name, entry.metadata()?.len()));
        }
    }
    names.sort();
    Ok(Head {
        vote,
        events_from: receiver_events_last + 1,
        manifest,
        files: names,
    })
}

/// Streams `head`, the files and the event records to `addr`; returns the
/// receiver's answer (postcard of `SnapshotResponse`).
pub async fn send(
    peers: &Peers,
    addr: &str,
    group: u32,
    head: Head,
    dir: PathBuf,
    events: Arc<EventLog>,
    timeout: Duration,
) -> Result<Vec<u8>, super::CallError> {
    let head_bytes = postcard::to_allocvec(&head).expect("a head serializes");
    let path = Rpc::Snapshot.path(group);
    let head_tag = peers.secret().sign(path.as_bytes(), &head_bytes);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_QUEUED);
    let secret = peers.secret().clone();
    let target = addr.to_string();
    tokio::task::spawn_blocking(move || {
        let mut producer = Producer {
            tx,
            mac: Some(secret.stream(path.as_bytes())),
            sent: 0,
            started: Instant::now(),
            target,
        };
        if let Err(error) = producer.produce(&head_bytes, &head, &dir, &events) {
            let _ = producer.tx.blocking_send(Err(error));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let body = reqwest::Body::wrap_stream(stream);
    peers
        .call_streaming(addr, group, Rpc::Snapshot, head_tag, body, timeout)
        .await
}

/// Reads the snapshot from disk into the connection's queue.
struct Producer {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    /// Taken to sign once everything is sent.
    mac: Option<StreamMac>,
    sent: u64,
    started: Instant,
    target: String,
}

impl Producer {
    fn push(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        if let Some(mac) = &mut self.mac {
            mac.update(&bytes);
        }
        let before = self.sent / PROGRESS_EVERY;
        self.sent += bytes.len() as u64;
        if self.sent / PROGRESS_EVERY > before {
            tracing::info!(to = %self.target, mb = self.sent >> 20, "sending a snapshot");
        }
        self.tx
            .blocking_send(Ok(Bytes::from(bytes)))
            .map_err(|_| std::io::Error::other("the receiver hung up"))
    }

    fn produce(
        &mut self,
        head_bytes: &[u8],
        head: &Head,
        dir: &Path,
        events: &EventLog,
    ) -> std::io::Result<()> {
        let length = u32::try_from(head_bytes.len()).map_err(std::io::Error::other)?;
        self.push([&length.to_le_bytes()[..], head_bytes].concat())?;
        for (name, len) in &head.files {
            let mut file = std::fs::File::open(dir.join(CHECKPOINT_DIR).join(name))?;
            let mut left = *len;
            while left > 0 {
                let mut chunk =
                    vec![0; CHUNK_BYTES.min(usize::try_from(left).unwrap_or(CHUNK_BYTES))];
                std::io::Read::read_exact(&mut file, &mut chunk)?;
                left -= chunk.len() as u64;
                self.push(chunk)?;
            }
        }
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        for seq in head.events_from..=head.manifest.events_last {
            let found = events
                .with_record(seq, |record| {
                    let length = u32::try_from(record.len()).expect("records are under 4 GiB");
                    chunk.extend_from_slice(&length.to_le_bytes());
                    chunk.extend_from_slice(record);
                })
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if found.is_none() {
                return Err(std::io::Error::other(format!(
                    "event record {seq} is not in this node's event log"
                )));
            }
            if chunk.len() >= CHUNK_BYTES {
                self.push(std::mem::take(&mut chunk))?;
            }
        }
        if !chunk.is_empty() {
            self.push(chunk)?;
        }
        let tag = self.mac.take().expect("signed once").sign();
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(&tag)))
            .map_err(|_| std::io::Error::other("the receiver hung up"))?;
        tracing::info!(
            to = %self.target,
            mb = self.sent >> 20,
            seconds = self.started.elapsed().as_secs_f64(),
            "snapshot sent"
        );
        Ok(())
    }
}

/// Reads a streamed body exactly, feeding a MAC with what it reads.
pub struct Framed<S> {
    stream: S,
    buffer: Bytes,
    mac: Option<StreamMac>,
}

fn short() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the stream ended early")
}

impl<S, E> Framed<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    pub fn new(stream: S) -> Self {
        Framed {
            stream,
            buffer: Bytes::new(),
            mac: None,
        }
    }

    /// Up to `max` bytes, at least one; fed to the MAC.
    async fn some(&mut self, max: usize) -> std::io::Result<Bytes> {
        while self.buffer.is_empty() {
            match self.stream.next().await {
                Some(Ok(bytes)) => self.buffer = bytes,
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => return Err(short()),
            }
        }
        let take = max.min(self.buffer.len());
        let bytes = self.buffer.split_to(take);
        if let Some(mac) = &mut self.mac {
            mac.update(&bytes);
        }
        Ok(bytes)
    }

    async fn exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            out.extend_from_slice(&self.some(n - out.len()).await?);
        }
        Ok(out)
    }

    async fn u32(&mut self) -> std::io::Result<usize> {
        let bytes = self.exact(4).await?;
        let value = u32::from_le_bytes(bytes.try_into().expect("four bytes"));
        Ok(value as usize)
    }

    /// The head, its bytes, and the MAC started over them.
    pub async fn head(&mut self, mut mac: StreamMac) -> std::io::Result<(Head, Vec<u8>)> {
        let length = self.u32().await?;
        if length > HEAD_BYTES_MAX {
            return Err(std::io::Error::other(format!("a head of {length} bytes")));
        }
        let bytes = self.exact(length).await?;
        mac.update(&(length as u32).to_le_bytes());
        mac.update(&bytes);
        self.mac = Some(mac);
        let head = postcard::from_bytes(&bytes).map_err(std::io::Error::other)?;
        Ok((head, bytes))
    }

    /// Writes the files and the staged event records into `dir`, then
    /// checks the trailing MAC. Nothing in `dir` may be used unless this
    /// returns `Ok`.
    pub async fn body(&mut self, head: &Head, dir: &Path) -> std::io::Result<()> {
        let started = Instant::now();
        let mut received = 0u64;
        for (name, len) in &head.files {
            if name.contains('/') || name.starts_with('.') {
                return Err(std::io::Error::other(format!("file name {name:?}")));
            }
            let mut file = tokio::fs::File::create(dir.join(CHECKPOINT_DIR).join(name)).await?;
            let mut left = *len;
            while left > 0 {
                let bytes = self
                    .some(usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK_BYTES))
                    .await?;
                left -= bytes.len() as u64;
                file.write_all(&bytes).await?;
                let before = received / PROGRESS_EVERY;
                received += bytes.len() as u64;
                if received / PROGRESS_EVERY > before {
                    tracing::info!(mb = received >> 20, "receiving a snapshot");
                }
            }
            file.sync_all().await?;
        }
        let mut events =
            tokio::io::BufWriter::new(tokio::fs::File::create(dir.join(EVENTS_FILE)).await?);
        events.write_all(&head.events_from.to_le_bytes()).await?;
        for _ in head.events_from..=head.manifest.events_last {
            let length = self.u32().await?;
            if length > RECORD_BYTES_MAX {
                return Err(std::io::Error::other(format!("a record of {length} bytes")));
            }
            let record = self.exact(length).await?;
            events.write_all(&(length as u32).to_le_bytes()).await?;
            events.write_all(&record).await?;
            received += 4 + length as u64;
        }
        events.flush().await?;
        events.into_inner().sync_all().await?;
        let mac = self.mac.take().expect("the head started the MAC");
        let tag = self.exact(32).await?;
        if !mac.verify(&tag) {
            return Err(std::io::Error::other(
                "the snapshot's MAC does not match the cluster secret",
            ));
        }
        crate::log::sync_dir(dir).map_err(|e| std::io::Error::other(e.to_string()))?;
        tracing::info!(
            mb = received >> 20,
            seconds = started.elapsed().as_secs_f64(),
            snapshot = %head.manifest.meta.snapshot_id,
            "snapshot received"
        );
        Ok(())
    }
}

/// Hands each staged event record of a received snapshot, in order, with
/// its sequence number, to `each`; none if it has no staged records.
pub fn for_each_staged_event(
    dir: &Path,
    mut each: impl FnMut(u64, &[u8]) -> crate::Result<()>,
) -> crate::Result<()> {
    use std::io::Read;
    let path = dir.join(EVENTS_FILE);
    let io = |source| crate::Error::LogIo {
        path: path.clone(),
        source,
    };
    // A snapshot taken from a member's own disk carries no records.
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let mut file = std::io::BufReader::new(file);
    let mut first = [0; 8];
    file.read_exact(&mut first).map_err(io)?;
    let mut seq = u64::from_le_bytes(first);
    let mut record = Vec::new();
    loop {
        let mut length = [0; 4];
        match file.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(io(e)),
        }
        record.resize(u32::from_le_bytes(length) as usize, 0);
        file.read_exact(&mut record).map_err(io)?;
        each(seq, &record)?;
        seq += 1;
    }
}

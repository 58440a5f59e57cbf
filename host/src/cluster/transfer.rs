//! A snapshot on the wire, streamed: never held whole in memory.
//!
//! ```text
//! u32 head length, head (postcard: vote, manifest, file names and sizes,
//! the event records and command entries sent), every file's bytes in
//! order, the event records the receiver lacks, then the command entries
//! it lacks up to the snapshot's (`crate::raft` archive; u32 length, bytes
//! each), and a 32-byte HMAC of everything before it.
//! ```
//!
//! The request's `Wallet-Cluster-Mac` signs the head alone, so a receiver
//! refuses a stranger, or a stale leader's vote, before reading further;
//! the trailing MAC is checked before anything received is installed.
//!
//! A backup (`crate::backup`) is the same stream from index 1, sealed with
//! a SHA-256 instead: an admin fetches it with a token, not the secret.

use super::{Peers, Rpc, StreamMac};
use crate::raft::{CHECKPOINT_DIR, LogStore, Manifest, NodeId, SnapshotFiles};
use crate::store::EventLog;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use openraft::Vote;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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
/// The staged command entries, in the same form.
pub const COMMANDS_FILE: &str = "commands";

/// What a receiver holds, asked before a snapshot is sent.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Holds {
    /// Its last event record.
    pub events_last: u64,
    /// The last command entry of its archive, whole from index 1.
    pub commands_last: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Head {
    pub vote: Vote<NodeId>,
    pub manifest: Manifest,
    pub files: Vec<(String, u64)>,
    /// The first event record sent; records up to `manifest.events_last`
    /// follow the files.
    pub events_from: u64,
    /// The command entries sent after the records: `commands_from` to
    /// `commands_to`, none if that is empty.
    pub commands_from: u64,
    pub commands_to: u64,
}

/// The head of `snapshot`, for a receiver that `holds` what it says, from
/// a sender whose archive is whole up to `archived_through`.
pub fn head(
    vote: Vote<NodeId>,
    files: &SnapshotFiles,
    holds: Holds,
    archived_through: u64,
) -> std::io::Result<Head> {
    let manifest = files.manifest()?;
    let last = manifest.meta.last_log_id.map_or(0, |id| id.index);
    let commands_from = holds.commands_last + 1;
    let commands_to = if archived_through >= last {
        last
    } else {
        tracing::warn!(
            archived_through,
            snapshot = last,
            "this member's command archive does not reach the snapshot; none is sent"
        );
        commands_from - 1
    };
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
        events_from: holds.events_last + 1,
        manifest,
        files: names,
        commands_from,
        commands_to,
    })
}

/// Where a sender reads the records and entries it streams.
pub struct Sources {
    pub events: Arc<EventLog>,
    pub commands: LogStore,
}

/// What seals a stream: between members, the MAC under the cluster
/// secret; for a backup, a SHA-256 that catches a truncated or damaged
/// copy (the token and TLS guard who may fetch it).
pub enum Seal {
    Mac(StreamMac),
    Digest(Sha256),
}

impl Seal {
    pub fn digest() -> Seal {
        Seal::Digest(Sha256::new())
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Seal::Mac(mac) => mac.update(bytes),
            Seal::Digest(digest) => digest.update(bytes),
        }
    }

    fn tag(self) -> [u8; 32] {
        match self {
            Seal::Mac(mac) => mac.sign(),
            Seal::Digest(digest) => digest.finalize().into(),
        }
    }

    fn verify(self, tag: &[u8]) -> bool {
        match self {
            Seal::Mac(mac) => mac.verify(tag),
            Seal::Digest(digest) => digest.finalize().as_slice() == tag,
        }
    }
}

/// `head`, the files in `dir`'s checkpoint, the event records, the command
/// entries and the seal's tag, read from disk on a blocking thread a few
/// chunks ahead of the consumer. `dir` is dropped once everything is read
/// (a guard can remove it then); `to` names the consumer in progress lines.
pub fn stream<D>(
    head: Head,
    dir: D,
    sources: Sources,
    mut seal: Seal,
    to: String,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static
where
    D: AsRef<Path> + Send + 'static,
{
    let head_bytes = postcard::to_allocvec(&head).expect("a head serializes");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_QUEUED);
    tokio::task::spawn_blocking(move || {
        let length = u32::try_from(head_bytes.len()).expect("heads are small");
        let framed = [&length.to_le_bytes()[..], &head_bytes].concat();
        seal.update(&framed);
        let mut producer = Producer {
            tx,
            seal: Some(seal),
            sent: framed.len() as u64,
            started: Instant::now(),
            to,
        };
        let first = producer
            .tx
            .blocking_send(Ok(Bytes::from(framed)))
            .map_err(|_| std::io::Error::other("the receiver hung up"));
        if let Err(error) = first.and_then(|()| producer.produce(&head, dir.as_ref(), &sources)) {
            let _ = producer.tx.blocking_send(Err(error));
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Streams `head`, the files, the event records and the command entries to
/// `addr`; returns the receiver's answer (postcard of `SnapshotResponse`).
pub async fn send(
    peers: &Peers,
    addr: &str,
    group: u32,
    head: Head,
    dir: PathBuf,
    sources: Sources,
    timeout: Duration,
) -> Result<Vec<u8>, super::CallError> {
    let head_bytes = postcard::to_allocvec(&head).expect("a head serializes");
    let path = Rpc::Snapshot.path(group);
    let head_tag = peers.secret().sign(path.as_bytes(), &head_bytes);
    let seal = Seal::Mac(peers.secret().stream(path.as_bytes()));
    let body = reqwest::Body::wrap_stream(stream(head, dir, sources, seal, addr.to_string()));
    peers
        .call_streaming(addr, group, Rpc::Snapshot, head_tag, body, timeout)
        .await
}

/// Reads the snapshot from disk into the connection's queue.
struct Producer {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    /// Taken to seal once everything is sent.
    seal: Option<Seal>,
    sent: u64,
    started: Instant,
    to: String,
}

impl Producer {
    fn push(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        if let Some(seal) = &mut self.seal {
            seal.update(&bytes);
        }
        let before = self.sent / PROGRESS_EVERY;
        self.sent += bytes.len() as u64;
        if self.sent / PROGRESS_EVERY > before {
            tracing::info!(to = %self.to, mb = self.sent >> 20, "sending a snapshot");
        }
        self.tx
            .blocking_send(Ok(Bytes::from(bytes)))
            .map_err(|_| std::io::Error::other("the receiver hung up"))
    }

    fn produce(&mut self, head: &Head, dir: &Path, sources: &Sources) -> std::io::Result<()> {
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
        let frame = |chunk: &mut Vec<u8>, record: &[u8]| {
            let length = u32::try_from(record.len()).expect("records are under 4 GiB");
            chunk.extend_from_slice(&length.to_le_bytes());
            chunk.extend_from_slice(record);
        };
        let missing = |what: &str, at: u64| {
            std::io::Error::other(format!("{what} {at} is not on this member"))
        };
        for seq in head.events_from..=head.manifest.events_last {
            sources
                .events
                .with_record(seq, |record| frame(&mut chunk, record))
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .ok_or_else(|| missing("event record", seq))?;
            if chunk.len() >= CHUNK_BYTES {
                self.push(std::mem::take(&mut chunk))?;
            }
        }
        for index in head.commands_from..=head.commands_to {
            let entry = sources
                .commands
                .archived(index)
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .ok_or_else(|| missing("command entry", index))?;
            frame(&mut chunk, &entry);
            if chunk.len() >= CHUNK_BYTES {
                self.push(std::mem::take(&mut chunk))?;
            }
        }
        if !chunk.is_empty() {
            self.push(chunk)?;
        }
        let tag = self.seal.take().expect("sealed once").tag();
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(&tag)))
            .map_err(|_| std::io::Error::other("the receiver hung up"))?;
        tracing::info!(
            to = %self.to,
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
    seal: Option<Seal>,
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
            seal: None,
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
        if let Some(seal) = &mut self.seal {
            seal.update(&bytes);
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

    /// The head, its bytes, and the seal started over them.
    pub async fn head(&mut self, mut seal: Seal) -> std::io::Result<(Head, Vec<u8>)> {
        let length = self.u32().await?;
        if length > HEAD_BYTES_MAX {
            return Err(std::io::Error::other(format!("a head of {length} bytes")));
        }
        let bytes = self.exact(length).await?;
        seal.update(&(length as u32).to_le_bytes());
        seal.update(&bytes);
        self.seal = Some(seal);
        let head = postcard::from_bytes(&bytes).map_err(std::io::Error::other)?;
        Ok((head, bytes))
    }

    /// Writes the files, the staged event records and command entries into
    /// `dir`, then checks the trailing seal. Nothing in `dir` may be used
    /// unless this returns `Ok`.
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
        let events = head.events_from..=head.manifest.events_last;
        received += self.stage(&dir.join(EVENTS_FILE), events).await?;
        let commands = head.commands_from..=head.commands_to;
        received += self.stage(&dir.join(COMMANDS_FILE), commands).await?;
        let seal = self.seal.take().expect("the head started the seal");
        let why = match seal {
            Seal::Mac(_) => "the snapshot's MAC does not match the cluster secret",
            Seal::Digest(_) => "the stream's SHA-256 does not match: it was damaged or cut short",
        };
        let tag = self.exact(32).await?;
        if !seal.verify(&tag) {
            return Err(std::io::Error::other(why));
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

    /// Writes the records numbered `seqs` into the staging file `path`;
    /// returns the bytes read.
    async fn stage(
        &mut self,
        path: &Path,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> std::io::Result<u64> {
        let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
        file.write_all(&seqs.start().to_le_bytes()).await?;
        let mut received = 0;
        for _ in seqs {
            let length = self.u32().await?;
            if length > RECORD_BYTES_MAX {
                return Err(std::io::Error::other(format!("a record of {length} bytes")));
            }
            let record = self.exact(length).await?;
            file.write_all(&(length as u32).to_le_bytes()).await?;
            file.write_all(&record).await?;
            received += 4 + length as u64;
        }
        file.flush().await?;
        file.into_inner().sync_all().await?;
        Ok(received)
    }
}

/// The records staged in one file of a received snapshot (`EVENTS_FILE`
/// or `COMMANDS_FILE`), read in order.
pub struct Staged {
    path: PathBuf,
    file: std::io::BufReader<std::fs::File>,
    /// The number of the first record.
    pub first: u64,
    next: u64,
    record: Vec<u8>,
}

impl Staged {
    /// The file `name` in the snapshot directory `dir`; `None` if there is
    /// none (a snapshot taken from a member's own disk carries no records).
    pub fn open(dir: &Path, name: &str) -> crate::Result<Option<Staged>> {
        use std::io::Read;
        let path = dir.join(name);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(crate::Error::LogIo { path, source }),
        };
        let mut file = std::io::BufReader::new(file);
        let mut first = [0; 8];
        if let Err(source) = file.read_exact(&mut first) {
            return Err(crate::Error::LogIo { path, source });
        }
        let first = u64::from_le_bytes(first);
        Ok(Some(Staged {
            path,
            file,
            first,
            next: first,
            record: Vec::new(),
        }))
    }

    /// The next record and its number, `None` after the last.
    pub fn next_record(&mut self) -> crate::Result<Option<(u64, &[u8])>> {
        use std::io::Read;
        let io = |source| crate::Error::LogIo {
            path: self.path.clone(),
            source,
        };
        let mut length = [0; 4];
        match self.file.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io(e)),
        }
        self.record.resize(u32::from_le_bytes(length) as usize, 0);
        self.file.read_exact(&mut self.record).map_err(io)?;
        let seq = self.next;
        self.next += 1;
        Ok(Some((seq, &self.record)))
    }
}

//! `wallet serve`: a node and its HTTP edge on one listener, until SIGTERM
//! or Ctrl-C; then the edge stops taking requests, lets those in flight
//! finish (their batches included), and Raft stops. If the node itself
//! stops on a fatal error (its storage failed), the edge stops too and
//! `serve` returns the error, so the process exits non-zero and a
//! supervisor can restart it.

use super::tls::{TlsListener, server_config};
use super::{Node, NodeConfig};
use crate::api;
use crate::cluster::{self, ClusterSecret, Peers};
use crate::partition::{Group, PartitionOptions};
use crate::{Error, Result};
use axum::serve::ListenerExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// How long requests in flight may take to finish once the node stopped.
const STOPPED_GRACE: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub node_id: u64,
    /// The admin token to create on first start, instead of a random one.
    pub admin_token: Option<String>,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Serve plain HTTP on an address other machines can reach.
    pub insecure_http: bool,
    pub free_space_floor_bytes: u64,
    pub partition: PartitionOptions,
    /// Every member of a replicated group, this node included, by id: HTTP
    /// addresses the members reach each other at. Empty: a group of one.
    pub peers: BTreeMap<u64, String>,
    /// Required with `peers`.
    pub cluster_secret: Option<ClusterSecret>,
    /// Join a running group (added by its leader) instead of initializing
    /// a new one.
    pub join: bool,
    /// How many partitions (Raft groups) the node runs (`NodeConfig`).
    pub partitions: Option<u32>,
    /// How transfers across partitions are coordinated.
    pub coordination: crate::coordinator::Mode,
}

/// The group this node is a member of, and how it reaches the others.
fn group(options: &ServeOptions) -> Result<Group> {
    if options.peers.is_empty() {
        return Ok(Group::alone());
    }
    if !options.peers.contains_key(&options.node_id) {
        return Err(Error::Peers(format!(
            "this node's id {} is not among them",
            options.node_id
        )));
    }
    let secret = options.cluster_secret.clone().ok_or_else(|| {
        Error::ClusterSecret(
            "a member of a replicated group needs one: --cluster-secret-file or WALLET_CLUSTER_SECRET".into(),
        )
    })?;
    secret.watch();
    // Members serve HTTPS with certificates their own chain vouches for.
    let roots = options.tls.as_ref().map(|(cert, _)| cert.as_path());
    Ok(Group {
        members: options.peers.clone(),
        peers: Some(Peers::new(secret, roots)?),
        join: options.join,
    })
}

/// Bearer tokens must not cross a network in clear text by accident.
fn check_transport(options: &ServeOptions) -> Result<()> {
    if options.tls.is_none() && !options.listen.ip().is_loopback() && !options.insecure_http {
        return Err(Error::InsecureListen {
            address: options.listen.to_string(),
        });
    }
    Ok(())
}

pub async fn serve(options: ServeOptions) -> Result<()> {
    check_transport(&options)?;
    let signals = StopSignals::register();
    std::fs::create_dir_all(&options.data_dir).map_err(|source| Error::DataDir {
        path: options.data_dir.clone(),
        source,
    })?;
    let tls = match &options.tls {
        Some((cert, key)) => Some(server_config(cert, key)?),
        None => None,
    };
    let group = group(&options)?;
    let listen_error = |source| Error::Listen {
        address: options.listen.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(listen_error)?;
    let address = listener.local_addr().map_err(listen_error)?;
    let metrics = api::install_recorder().map_err(|e| Error::Metrics(e.to_string()))?;
    let advertise = options
        .peers
        .get(&options.node_id)
        .cloned()
        .unwrap_or_else(|| address.to_string());
    let config = NodeConfig {
        data_dir: options.data_dir.clone(),
        node_id: options.node_id,
        advertise,
        free_space_floor_bytes: options.free_space_floor_bytes,
        wasm_cache_dir: options.data_dir.join("wasm-cache"),
        partition: options.partition.clone(),
        group: group.clone(),
        partitions: options.partitions,
        coordination: options.coordination,
        admin_token: options.admin_token.clone(),
    };
    let node = Arc::new(Node::start(&config).await?);
    let mut router = api::router(node.clone(), metrics);
    if let Some(peers) = &group.peers {
        router = router.merge(cluster::router(node.clone(), peers.secret().clone()));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{address}");
    tracing::info!(%address, data_dir = %options.data_dir.display(), "serving");

    let (stopped_tx, mut stopped) = watch::channel(None::<String>);
    let stop = {
        let node = node.clone();
        async move {
            tokio::select! {
                () = signals.recv() => {}
                why = node.stopped() => {
                    tracing::error!(reason = %why, "the node stopped; exiting");
                    stopped_tx.send_replace(Some(why));
                }
            }
        }
    };
    let serving = async {
        match tls {
            Some(config) => {
                let listener = TlsListener::new(listener, config).map_err(listen_error)?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
            }
            None => {
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
            }
        }
        .map_err(listen_error)
    };
    let grace = async {
        let _ = stopped.wait_for(Option::is_some).await;
        tokio::time::sleep(STOPPED_GRACE).await;
    };
    tokio::select! {
        served = serving => served?,
        () = grace => tracing::warn!("requests in flight did not finish after the node stopped"),
    }
    tracing::info!("edge stopped; stopping raft");
    node.shutdown().await;
    match stopped.borrow().clone() {
        Some(why) => Err(Error::Stopped(why)),
        None => Ok(()),
    }
}

/// SIGTERM and SIGINT, taken over when `serve` begins: registered only
/// once the server was already answering, a signal sent right after the
/// address is printed would kill the process instead of stopping it.
struct StopSignals {
    term: Option<Signal>,
    interrupt: Option<Signal>,
}

impl StopSignals {
    fn register() -> Self {
        let register = |kind, name| {
            signal(kind)
                .inspect_err(|error| tracing::warn!(%error, "no {name} handler"))
                .ok()
        };
        StopSignals {
            term: register(SignalKind::terminate(), "SIGTERM"),
            interrupt: register(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// The first stop signal.
    async fn recv(mut self) {
        tokio::select! {
            () = next(&mut self.term) => {}
            () = next(&mut self.interrupt) => {}
        }
        tracing::info!("stop signal: finishing requests in flight");
    }
}

/// The signal's next delivery; never, without a handler.
async fn next(signal: &mut Option<Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

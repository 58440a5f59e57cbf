//! `wallet serve`: a node and its HTTP edge on one listener, until SIGTERM
//! or Ctrl-C; then the edge stops taking requests, lets those in flight
//! finish (their batches included), and Raft stops.

use super::{Node, NodeConfig};
use crate::api::{self, Auth};
use crate::{Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub node_id: u64,
    /// The admin token to create on first start, instead of a random one.
    pub admin_token: Option<String>,
}

pub async fn serve(options: ServeOptions) -> Result<()> {
    std::fs::create_dir_all(&options.data_dir).map_err(|source| Error::DataDir {
        path: options.data_dir.clone(),
        source,
    })?;
    let listen_error = |source| Error::Listen {
        address: options.listen.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(listen_error)?;
    let address = listener.local_addr().map_err(listen_error)?;
    let metrics = api::install_recorder().map_err(|e| Error::Metrics(e.to_string()))?;
    let (auth, new_admin_token) = Auth::open_with(&options.data_dir, options.admin_token)?;
    if let Some(token) = new_admin_token {
        // Printed once: only its hash is stored.
        println!("admin token (shown once, keep it): {token}");
    }
    let config = NodeConfig {
        data_dir: options.data_dir.clone(),
        node_id: options.node_id,
        advertise: address.to_string(),
    };
    let node = Arc::new(Node::start(&config).await?);
    let router = api::router(node.clone(), Arc::new(auth), metrics);
    println!("listening on http://{address}");
    tracing::info!(%address, data_dir = %options.data_dir.display(), "serving");
    axum::serve(listener, router)
        .with_graceful_shutdown(stop_signal())
        .await
        .map_err(listen_error)?;
    tracing::info!("edge stopped; stopping raft");
    node.shutdown().await;
    Ok(())
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "no SIGTERM handler; Ctrl-C only");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("stop signal: finishing requests in flight");
}

use super::{ClusterSecret, MAC_HEADER, Rpc, answer_label};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long connecting to a peer may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle connections kept per peer: Raft's replication streams, votes and
/// forwarded writes run at once.
const IDLE_PER_PEER: usize = 16;

/// `1=HOST:PORT,2=HOST:PORT,...`: every member's id and HTTP address.
pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, address) = item
            .split_once('=')
            .ok_or_else(|| Error::Peers(format!("{item:?} is not ID=HOST:PORT")))?;
        let id: u64 = id
            .trim()
            .parse()
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| Error::Peers(format!("{id:?} is not a node id (1 or more)")))?;
        let address = address.trim();
        if !is_address(address) {
            return Err(Error::Peers(format!("{address:?} is not HOST:PORT")));
        }
        if peers.insert(id, address.to_string()).is_some() {
            return Err(Error::Peers(format!("node {id} is listed twice")));
        }
    }
    if peers.is_empty() {
        return Err(Error::Peers("no members listed".into()));
    }
    Ok(peers)
}

/// `HOST:PORT`: a name or IPv4 address (letters, digits, dots, dashes) or
/// an IPv6 address in brackets, and a port from 1 to 65535 without leading
/// zeros (what the OpenAPI document's pattern says too).
fn is_address(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }
    };
    let port_ok = !port.starts_with('0')
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    host_ok && port_ok
}

/// Why a call to a peer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing was sent: the peer could not be reached.
    #[error("{addr} is unreachable: {why}")]
    Unreachable { addr: String, why: String },
    /// Sent, but no valid answer came back in time.
    #[error("{addr}: {why}")]
    Failed { addr: String, why: String },
}

/// The client members call each other with: one pool of connections per
/// peer (a call borrows one; nothing connects per message), every request
/// signed and every answer checked.
#[derive(Clone, Debug)]
pub struct Peers {
    http: reqwest::Client,
    secret: ClusterSecret,
    scheme: &'static str,
}

impl Peers {
    /// Peers reached over HTTPS when `tls_roots` names the PEM certificates
    /// that may sign their certificates; over HTTP otherwise.
    pub fn new(secret: ClusterSecret, tls_roots: Option<&Path>) -> Result<Peers> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(IDLE_PER_PEER);
        if let Some(path) = tls_roots {
            let pem = std::fs::read(path)
                .map_err(|e| Error::PeerNetwork(format!("{}: {e}", path.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::PeerNetwork(format!("{}: {e}", path.display())))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| Error::PeerNetwork(e.to_string()))?;
        Ok(Peers {
            http,
            secret,
            scheme: if tls_roots.is_some() { "https" } else { "http" },
        })
    }

    pub fn secret(&self) -> &ClusterSecret {
        &self.secret
    }

    /// Sends `body` to `rpc` of `group` at `addr` and returns the checked
    /// answer's body.
    pub async fn call(
        &self,
        addr: &str,
        group: u32,
        rpc: Rpc,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let path = rpc.path(group);
        let tag = self.secret.sign(path.as_bytes(), &body);
        let request = self
            .http
            .post(format!("{}://{addr}{path}", self.scheme))
            .header(MAC_HEADER, hex::encode(tag))
            .timeout(timeout)
            .body(body);
        self.send(addr, &path, request).await
    }

    /// Sends a streamed body whose own framing carries its MAC; `head_tag`
    /// signs what the receiver checks before it reads the stream.
    pub async fn call_streaming(
        &self,
        addr: &str,
        group: u32,
        rpc: Rpc,
        head_tag: [u8; 32],
        body: reqwest::Body,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let path = rpc.path(group);
        let request = self
            .http
            .post(format!("{}://{addr}{path}", self.scheme))
            .header(MAC_HEADER, hex::encode(head_tag))
            .timeout(timeout)
            .body(body);
        self.send(addr, &path, request).await
    }

    async fn send(
        &self,
        addr: &str,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, CallError> {
        let failed = |why: String| CallError::Failed {
            addr: addr.to_string(),
            why,
        };
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                CallError::Unreachable {
                    addr: addr.to_string(),
                    why: e.to_string(),
                }
            } else {
                failed(e.to_string())
            }
        })?;
        let status = response.status();
        let tag = response
            .headers()
            .get(MAC_HEADER)
            .and_then(|v| hex::decode(v.as_bytes()).ok());
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(failed(format!("{status}: {text}")));
        }
        match tag {
            Some(tag) if self.secret.verify(&answer_label(path), &body, &tag) => Ok(body.to_vec()),
            _ => Err(failed(
                "the answer is not signed with the cluster secret".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_bad_lists_are_refused() {
        let peers = parse_peers("1=127.0.0.1:7001, 2=node-b:7002,3=[::1]:7003").expect("ok");
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[&3], "[::1]:7003");
        for bad in [
            "",
            "1=127.0.0.1",
            "0=a:1",
            "x=a:1",
            "1=a:1,1=b:2",
            "1=a:0",
            "1=:80",
            "1=a:080",
            "1=a:65536",
            "1=a_b:80",
            "1=[]:80",
            "1",
        ] {
            assert!(parse_peers(bad).is_err(), "{bad:?} was accepted");
        }
    }
}

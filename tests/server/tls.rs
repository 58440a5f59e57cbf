//! HTTPS on the edge, and no plain HTTP beyond loopback by accident.

use crate::harness::{ADMIN, Server};
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn the_api_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("a certificate");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).expect("writes");
    std::fs::write(&key, pair.key_pair.serialize_pem()).expect("writes");
    let args = [
        "--tls-cert",
        cert.to_str().expect("utf-8"),
        "--tls-key",
        key.to_str().expect("utf-8"),
    ];
    let server = Server::try_start_with(&dir.path().join("data"), &args).expect("starts");
    assert!(server.url.starts_with("https://"), "{}", server.url);

    let trusted = reqwest::Certificate::from_pem(pair.cert.pem().as_bytes()).expect("pem");
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(trusted)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let status = client
        .get(format!("{}/v1/cluster/status", server.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(status.status(), StatusCode::OK);

    // Plain HTTP on the same port gets no answer.
    let plain = server.url.replacen("https://", "http://", 1);
    let answer = client.get(format!("{plain}/healthz")).send().await;
    assert!(answer.is_err() || !answer.expect("answer").status().is_success());
    // Nor does a client that does not trust the certificate.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert!(
        untrusting
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_err()
    );
}

#[test]
fn plain_http_beyond_loopback_needs_insecure_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let failure = match Server::try_start_with(&dir.path().join("data"), &["--listen", "0.0.0.0:0"])
    {
        Ok(_) => panic!("served plain HTTP on every interface"),
        Err(failure) => failure,
    };
    assert_ne!(failure.code, Some(0));
    assert!(
        failure.stderr.contains("--insecure-http"),
        "{}",
        failure.stderr
    );
    assert!(failure.stderr.contains("--tls-cert"), "{}", failure.stderr);
}

//! Metrics, health, the OpenAPI document, unknown routes.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_route_template() {
    let app = app().await;
    let answer = app.get("/v1/wallet/accounts/alice", Some(ADMIN)).await;
    assert_eq!(answer.status, 200);
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    let line = metrics
        .text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/v1/wallet/accounts/{id}""#)
                && l.contains(r#"method="GET""#)
                && l.contains(r#"status="200""#)
        })
        .unwrap_or_default();
    assert!(!line.is_empty(), "{}", metrics.text);
    assert!(metrics.text.contains("http_request_duration_seconds"));
    assert!(!metrics.text.contains("accounts/alice"), "no raw paths");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_unknown_routes() {
    let app = app().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.json, serde_json::json!({"status": "ok"}));
    let unknown = app.get("/v2/nothing", Some(ADMIN)).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.code(), "not_found");
    let wrong_method = app.get("/v1/wallet/balance_transfer", Some(ADMIN)).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.code(), "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_covers_every_route() {
    let app = app().await;
    let answer = app.get("/openapi.json", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["openapi"], "3.0.3");
    let routes = [
        ("/v1/wallet/balance_transfer", "post"),
        ("/v1/wallet/balance_transfers", "post"),
        ("/v1/wallet/accounts", "post"),
        ("/v1/wallet/account_openings", "post"),
        ("/v1/wallet/deposit", "post"),
        ("/v1/wallet/withdraw", "post"),
        ("/v1/wallet/accounts/{id}", "get"),
        ("/v1/wallet/accounts/{id}/balance", "get"),
        ("/v1/wallet/accounts/{id}/history", "get"),
        ("/v1/wallet/transfers/{transaction_id}", "get"),
        ("/v1/cluster/status", "get"),
        ("/v1/cluster/members", "post"),
        ("/v1/cluster/members/{id}", "delete"),
        ("/v1/cluster/partitions/{partition}/replicas", "post"),
        ("/v1/cluster/partitions/{partition}/replicas/{id}", "delete"),
        ("/v1/cluster/partitions/{partition}/split", "post"),
        ("/v1/admin/tokens", "post"),
        ("/v1/admin/tokens", "get"),
        ("/v1/admin/tokens/{id}", "delete"),
        ("/v1/admin/backup", "get"),
        ("/v1/admin/versions", "post"),
        ("/v1/admin/versions", "get"),
        ("/v1/admin/versions/{hash}/activate", "post"),
        ("/v1/admin/versions/{hash}/verify", "post"),
        ("/v1/admin/versions/{hash}/cancel", "post"),
        ("/metrics", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
    ];
    let paths = answer.json["paths"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        paths.len(),
        routes.len() - 2,
        "creating and listing tokens share a path, as do deploying and listing versions"
    );
    for (path, method) in routes {
        assert!(
            paths[path][method]["responses"].is_object(),
            "{path} {method}"
        );
    }
    // Every $ref resolves.
    let text = answer.text;
    for part in text.split("\"$ref\":\"#/components/").skip(1) {
        let target = part.split('"').next().unwrap_or_default();
        let mut node = &answer.json["components"];
        for key in target.split('/') {
            node = &node[key];
        }
        assert!(node.is_object(), "unresolved $ref {target}");
    }
}

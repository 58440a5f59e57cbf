//! `GET /openapi.json`: the API described by hand, as OpenAPI 3.0.

use axum::Json;
use serde_json::{Value, json};

/// The document (also used by tests to check that every route is covered).
pub fn spec() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Wallet",
            "version": "1.0.0",
            "description": "A digital wallet: exact money movements between accounts. Amounts are decimal strings with at most the currency's ISO 4217 minor-unit digits (USD 2, JPY 0, BHD 3); more digits are refused, never rounded. Every failure body is {\"error\": code, \"message\": text} unless stated otherwise. Any write is safe to retry with the same transaction_id."
        },
        "security": [{"bearer": []}],
        "paths": paths(),
        "components": components(),
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn body(name: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": reference(name)}}})
}

fn answer(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": reference(schema)}}})
}

fn error(code: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{code}")})
}

fn id_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

fn money_post(summary: &str, request: &str) -> Value {
    json!({"post": {
        "summary": summary,
        "requestBody": body(request),
        "responses": {
            "200": answer("Applied (or, for a retry, applied before).", "Outcome"),
            "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
            "409": answer("The transaction_id was used before with a different body; reason idempotency_conflict.", "Outcome"),
            "422": answer("Refused by the rules; reason is a stable code such as insufficient_funds or account_not_found.", "Outcome"),
            "429": error("Overloaded"), "500": error("Internal"), "503": error("Unavailable"),
        }
    }})
}

fn paths() -> Value {
    let reads = |ok: Value| {
        json!({
            "200": ok, "400": error("BadRequest"), "401": error("Unauthorized"),
            "403": error("Forbidden"), "404": error("NotFound"), "500": error("Internal"),
        })
    };
    json!({
        "/v1/wallet/balance_transfer": money_post(
            "Move money between two accounts, all or nothing. Clients may only move money out of accounts they own.",
            "TransferRequest"),
        "/v1/wallet/balance_transfers": {"post": {
            "summary": "Up to 8190 transfers in one submission; one result per transfer, in order. One invalid or forbidden transfer refuses the whole batch (400/403) and nothing is submitted.",
            "requestBody": body("BatchRequest"),
            "responses": {
                "200": answer("One result per transfer; failed items carry a reason (idempotency_conflict for a reused transaction_id).", "BatchResponse"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "429": error("Overloaded"), "500": error("Internal"), "503": error("Unavailable"),
            }
        }},
        "/v1/wallet/deposit": money_post(
            "Admin: move money from the system account external:bank into account_id.", "CashRequest"),
        "/v1/wallet/withdraw": money_post(
            "Admin: move money from account_id to the system account external:bank.", "CashRequest"),
        "/v1/wallet/accounts": {"post": {
            "summary": "Admin: open an account.",
            "requestBody": body("AccountRequest"),
            "responses": {
                "201": answer("Opened; Location names the account.", "Account"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "409": answer("The account exists (error account_exists).", "Error"),
                "429": error("Overloaded"), "500": error("Internal"), "503": error("Unavailable"),
            }
        }},
        "/v1/wallet/accounts/{id}": {"get": {
            "summary": "An account and its balances per currency. Clients see only their own accounts.",
            "parameters": [id_param("id", "Account id: 1 to 64 characters of A-Za-z0-9_.:-")],
            "responses": reads(answer("The account.", "Account")),
        }},
        "/v1/wallet/accounts/{id}/balance": {"get": {
            "summary": "The balance of one currency (zero if the account never held it).",
            "parameters": [
                id_param("id", "Account id"),
                {"name": "currency", "in": "query", "required": true, "schema": {"type": "string", "example": "USD"}},
                {"name": "at", "in": "query", "required": false, "description": "Point-in-time balances: not supported yet (400 not_supported).", "schema": {"type": "string", "format": "date-time"}},
            ],
            "responses": reads(answer("The balance.", "Balance")),
        }},
        "/v1/wallet/accounts/{id}/history": {"get": {
            "summary": "The account's events, oldest first, a page at a time.",
            "parameters": [
                id_param("id", "Account id"),
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                {"name": "after", "in": "query", "required": false, "description": "The `next` of the previous page.", "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": reads(answer("A page of events.", "History")),
        }},
        "/v1/wallet/transfers/{transaction_id}": {"get": {
            "summary": "A transfer's status and its events.",
            "parameters": [id_param("transaction_id", "UUID")],
            "responses": reads(answer("The transfer.", "Transfer")),
        }},
        "/v1/cluster/status": {"get": {
            "summary": "This node, its replica group, leaders, applied index, chain head, active version.",
            "responses": {"200": answer("Status.", "ClusterStatus"), "401": error("Unauthorized")},
        }},
        "/v1/admin/tokens": {"post": {
            "summary": "Admin: create a token. The token is shown only in this answer.",
            "requestBody": body("TokenRequest"),
            "responses": {
                "201": answer("Created.", "TokenResponse"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "500": error("Internal"),
            }
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics.", "security": [],
            "responses": {"200": {"description": "Prometheus text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
        "/healthz": {"get": {
            "summary": "Liveness.", "security": [],
            "responses": {"200": {"description": "Up.", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}}}}}},
        }},
        "/openapi.json": {"get": {
            "summary": "This document.", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.0.", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},
    })
}

fn components() -> Value {
    let amount = json!({"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "example": "12.34",
        "description": "Positive decimal with at most the currency's minor-unit digits."});
    let signed_amount = json!({"type": "string", "example": "-12.34", "description": "Decimal with exactly the currency's minor-unit digits."});
    let currency = json!({"type": "string", "pattern": "^[A-Z]{3}$", "example": "USD", "description": "ISO 4217 code with a minor unit."});
    let account =
        json!({"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$", "example": "alice"});
    let uuid = json!({"type": "string", "format": "uuid"});
    let kind = json!({"type": "string", "enum": ["standard", "system", "credit"]});
    let retry =
        json!({"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}});
    let err = |description: &str| json!({"description": description, "content": {"application/json": {"schema": reference("Error")}}});
    json!({
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
            "description": "Roles: admin (everything), client (its own accounts), auditor (reads everything, writes nothing)."}},
        "responses": {
            "BadRequest": err("Malformed or invalid input; nothing was submitted. Codes: malformed_json, invalid_body, invalid_content_type, body_too_large, invalid_amount, amount_too_precise, amount_too_large, unknown_currency, unsupported_currency, same_account, invalid_account_id, invalid_transaction_id, invalid_owner, invalid_credit_limit, invalid_role, batch_empty, batch_too_large, invalid_query, invalid_limit, invalid_path, not_supported."),
            "Unauthorized": {"description": "No or unknown bearer token (error unauthorized).", "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": reference("Error")}}},
            "Forbidden": err("The token's role may not do this (error forbidden)."),
            "NotFound": err("No such account (account_not_found) or transfer (transfer_not_found)."),
            "Overloaded": {"description": "Too much queued (error overloaded); retry with the same transaction_id.", "headers": retry, "content": {"application/json": {"schema": reference("Error")}}},
            "Unavailable": {"description": "No leader here or shutting down (not_leader, shutting_down); retry with the same transaction_id.", "headers": retry, "content": {"application/json": {"schema": reference("Error")}}},
            "Internal": err("Internal error (error internal); safe to retry with the same transaction_id."),
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error", "message"], "properties": {
                "error": {"type": "string", "description": "Stable snake_case code."},
                "message": {"type": "string"}}},
            "TransferRequest": {"type": "object", "additionalProperties": false,
                "required": ["from_account", "to_account", "amount", "currency", "transaction_id"],
                "properties": {"from_account": account, "to_account": account, "amount": amount,
                    "currency": currency, "transaction_id": uuid}},
            "BatchRequest": {"type": "object", "additionalProperties": false, "required": ["transfers"],
                "properties": {"transfers": {"type": "array", "minItems": 1, "maxItems": 8190, "items": reference("TransferRequest")}}},
            "Outcome": {"type": "object", "required": ["status", "transaction_id"], "properties": {
                "status": {"type": "string", "enum": ["success", "failed"]},
                "transaction_id": uuid,
                "reason": {"type": "string", "description": "When failed: insufficient_funds, account_not_found, same_account, idempotency_conflict, overflow, ..."}}},
            "BatchResponse": {"type": "object", "required": ["results"], "properties": {
                "results": {"type": "array", "items": reference("Outcome")}}},
            "CashRequest": {"type": "object", "additionalProperties": false,
                "required": ["account_id", "amount", "currency", "transaction_id"],
                "properties": {"account_id": account, "amount": amount, "currency": currency, "transaction_id": uuid}},
            "AccountRequest": {"type": "object", "additionalProperties": false, "required": ["account_id"],
                "properties": {"account_id": account, "owner": {"type": "string", "minLength": 1, "maxLength": 128},
                    "kind": {"type": "string", "enum": ["standard", "system", "credit"], "default": "standard"},
                    "credit_limit_minor": {"type": "integer", "format": "int64", "minimum": 1,
                        "description": "Only with kind credit: how far below zero the account may go, in minor units of any currency."}}},
            "BalanceEntry": {"type": "object", "required": ["available", "reserved"], "properties": {
                "available": signed_amount, "reserved": signed_amount}},
            "Account": {"type": "object", "required": ["account_id", "owner", "kind", "balances"], "properties": {
                "account_id": account, "owner": {"type": "string", "nullable": true}, "kind": kind,
                "credit_limit_minor": {"type": "integer", "format": "int64"},
                "balances": {"type": "object", "additionalProperties": reference("BalanceEntry"),
                    "example": {"USD": {"available": "12.34", "reserved": "0.00"}}}}},
            "Balance": {"type": "object", "required": ["account_id", "currency", "available", "reserved", "as_of"], "properties": {
                "account_id": account, "currency": currency, "available": signed_amount, "reserved": signed_amount,
                "as_of": {"type": "string", "format": "date-time"},
                "applied_index": {"type": "integer", "nullable": true, "description": "The log index applied before the read."}}},
            "Event": {"type": "object", "required": ["seq", "log_index", "timestamp", "type"], "properties": {
                "seq": {"type": "integer"}, "log_index": {"type": "integer"},
                "timestamp": {"type": "string", "format": "date-time"},
                "type": {"type": "string", "enum": ["account_opened", "debited", "credited", "funds_reserved",
                    "reservation_released", "reservation_settled", "credit_pending", "pending_dropped",
                    "sent", "received", "cancel_recorded", "transfer_rejected"]},
                "transaction_id": uuid, "account": account, "currency": currency, "amount": amount,
                "owner": {"type": "string", "nullable": true}, "kind": kind,
                "credit_limit_minor": {"type": "integer"},
                "reason": {"type": "string"}}},
            "History": {"type": "object", "required": ["account_id", "events", "next"], "properties": {
                "account_id": account, "events": {"type": "array", "items": reference("Event")},
                "next": {"type": "integer", "nullable": true, "description": "Pass as `after`; null at the end."}}},
            "Transfer": {"type": "object", "required": ["transaction_id", "status", "events"], "properties": {
                "transaction_id": uuid,
                "status": {"type": "string", "enum": ["pending", "success", "failed"]},
                "reason": {"type": "string"},
                "events": {"type": "array", "items": reference("Event")}}},
            "Partition": {"type": "object", "properties": {
                "partition": {"type": "integer"}, "leader": {"type": "integer", "nullable": true},
                "members": {"type": "array", "items": {"type": "integer"}},
                "applied_index": {"type": "integer", "nullable": true},
                "chain_head": {"type": "string"}, "active_version": {"type": "string"}}},
            "ClusterStatus": {"type": "object", "properties": {
                "node_id": {"type": "integer"}, "nodes": {"type": "array", "items": {"type": "integer"}},
                "partitions": {"type": "array", "items": reference("Partition")}}},
            "TokenRequest": {"type": "object", "additionalProperties": false, "required": ["role"], "properties": {
                "role": {"type": "string", "enum": ["admin", "client", "auditor"]},
                "owner": {"type": "string", "description": "Required for client tokens, refused for others."}}},
            "TokenResponse": {"type": "object", "required": ["token", "role"], "properties": {
                "token": {"type": "string"}, "role": {"type": "string"},
                "owner": {"type": "string", "nullable": true}}},
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(spec())
}

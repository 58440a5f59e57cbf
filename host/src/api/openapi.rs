//! `GET /openapi.json`: the API described by hand, as OpenAPI 3.0, with the
//! same constraints the edge enforces. What a schema can say (types,
//! patterns, lengths, enums, required fields) is refused with 400 when
//! broken, and is taken from the definitions the rules use
//! (`wallet_core`); what it cannot say (an amount with more digits than
//! its currency has, a transfer to the same account, who may debit what)
//! is a business answer: 403, 409 or 422 with a stable reason.

use super::money::{AMOUNT_CHARS_MAX, amount_pattern};
use axum::Json;
use serde_json::{Value, json};
use wallet_core::account::ACCOUNT_ID_PATTERN;
use wallet_core::currency::{codes, exponent};
use wallet_core::event::EVENT_NAMES;
use wallet_core::principal::PRINCIPAL_PATTERN;
use wallet_core::reason::Reason;

/// A UUID in its hyphenated form, as the edge parses it.
const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// `partition:index` pairs (at most 64 partitions, and splits add
/// partitions while a node serves); an empty header is no header.
const POSITION_PATTERN: &str = "^([0-9]{1,2}:[0-9]{1,19}(,[0-9]{1,2}:[0-9]{1,19})*)?$";
const TOKEN_ID_PATTERN: &str = "^[0-9a-f]{16}$";
const VERSION_PATTERN: &str = "^[0-9a-fA-F]{64}$";

/// The document (also used by tests to check that every route is covered).
pub fn spec() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Wallet",
            "version": "2.0.0",
            "description": "A digital wallet: exact money movements between accounts. Amounts are decimal strings with at most the currency's ISO 4217 minor-unit digits (USD 2, JPY 0, BHD 3); more digits are refused (400 amount_too_precise), never rounded. Every failure body is {\"error\": code, \"message\": text} unless stated otherwise. Any write is safe to retry with the same transaction_id. Every write answer carries the position it was applied at in the Wallet-Position header; a read that sends it back reflects at least that write."
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

/// An answer with a JSON body and the position header.
fn answer(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "headers": {"Wallet-Position": {"$ref": "#/components/headers/WalletPosition"}},
        "content": {"application/json": {"schema": reference(schema)}},
    })
}

fn plain(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": reference(schema)}}})
}

fn error(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

fn path_param(name: &str, description: &str, pattern: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
        "schema": {"type": "string", "pattern": pattern}})
}

fn position_param() -> Value {
    json!({"$ref": "#/components/parameters/WalletPosition"})
}

fn read_param() -> Value {
    json!({"$ref": "#/components/parameters/WalletRead"})
}

fn partition_param() -> Value {
    json!({"name": "partition", "in": "path", "required": true,
        "schema": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 63}})
}

/// The answers every write may give besides its own.
fn write_errors(mut responses: Value) -> Value {
    for (status, name) in [
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("413", "TooLarge"),
        ("429", "Overloaded"),
        ("500", "Internal"),
        ("503", "Unavailable"),
        ("507", "InsufficientStorage"),
    ] {
        responses[status] = error(name);
    }
    responses
}

/// The answers every read may give besides its own.
fn read_errors(mut responses: Value) -> Value {
    for (status, name) in [
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("404", "NotFound"),
        ("422", "PositionUnknown"),
        ("500", "Internal"),
        ("503", "NotCaughtUp"),
    ] {
        responses[status] = error(name);
    }
    responses
}

fn money_post(summary: &str, request: &str) -> Value {
    json!({"post": {
        "summary": summary,
        "requestBody": body(request),
        "responses": write_errors(json!({
            "200": answer("Applied (or, for a retry, applied before).", "Outcome"),
            "403": answer("Refused by the rules: the caller may not move this money (not_owner) or may not make this request at all (not_allowed).", "Outcome"),
            "409": answer("The transaction_id was used before with another body or by another caller (idempotency_conflict).", "Outcome"),
            "422": answer("Refused by the rules, or for an amount of more minor units than an amount may have; reason is a stable code such as insufficient_funds, account_not_found, same_account, invalid_amount, amount_too_large.", "Outcome"),
        })),
    }})
}

fn paths() -> Value {
    let account_id = path_param("id", "Account id", ACCOUNT_ID_PATTERN);
    let mut paths = json!({
        "/v1/wallet/balance_transfer": money_post(
            "Move money between two accounts, all or nothing. A client moves money only out of accounts it owns.",
            "TransferRequest"),
        "/v1/wallet/balance_transfers": {"post": {
            "summary": "Up to 8190 transfers in one submission; one result per transfer, in order, each as the single endpoint would answer it. One malformed transfer refuses the whole batch (400) and nothing is submitted.",
            "requestBody": body("BatchRequest"),
            "responses": write_errors(json!({
                "200": answer("One result per transfer.", "BatchResponse"),
            })),
        }},
        "/v1/wallet/deposit": money_post(
            "Admin: move money from the system account external:bank into account_id.", "CashRequest"),
        "/v1/wallet/withdraw": money_post(
            "Admin: move money from account_id to the system account external:bank.", "CashRequest"),
        "/v1/wallet/accounts": {"post": {
            "summary": "Admin: open an account.",
            "requestBody": body("AccountRequest"),
            "responses": write_errors(json!({
                "201": answer("Opened; Location names the account.", "Account"),
                "403": plain("Refused by the rules: only an admin opens accounts (not_allowed).", "Error"),
                "409": plain("The account exists (account_exists).", "Error"),
                "422": plain("Refused by the rules (a stable reason as the error code).", "Error"),
            })),
        }},
        "/v1/wallet/account_openings": {"post": {
            "summary": "Admin: open up to 8190 accounts in one submission (an import, say); one result per account, in order. One malformed account refuses the whole batch (400) and nothing is submitted.",
            "requestBody": body("OpeningsRequest"),
            "responses": write_errors(json!({
                "200": answer("One result per account: opened, or failed with a reason (account_exists for one that was there).", "OpeningsResponse"),
            })),
        }},
        "/v1/wallet/accounts/{id}": {"get": {
            "summary": "An account and its balances per currency. Clients see only their own accounts.",
            "parameters": [account_id, position_param(), read_param()],
            "responses": read_errors(json!({"200": answer("The account.", "Account")})),
        }},
        "/v1/wallet/accounts/{id}/balance": {"get": {
            "summary": "The balance of one currency (zero if the account never held it). With `at`, the balance as of that time, from the read models: after every batch that ran at or before it, exactly what `wallet audit --at` computes.",
            "parameters": [
                account_id,
                {"name": "currency", "in": "query", "required": true, "schema": reference("Currency")},
                {"name": "at", "in": "query", "required": false, "description": "An RFC 3339 time. One in the future reads as now and one before 1970 as 1970; `as_of` in the answer says which time it is for.", "schema": {"type": "string", "format": "date-time"}},
                position_param(), read_param(),
            ],
            "responses": read_errors(json!({"200": answer("The balance.", "Balance")})),
        }},
        "/v1/wallet/accounts/{id}/history": {"get": {
            "summary": "The account's events, oldest first, a page at a time.",
            "parameters": [
                account_id,
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                {"name": "after", "in": "query", "required": false, "description": "The `next` of the previous page.", "schema": {"type": "integer", "format": "int64", "minimum": 0}},
                position_param(), read_param(),
            ],
            "responses": read_errors(json!({"200": answer("A page of events.", "History")})),
        }},
        "/v1/wallet/transfers/{transaction_id}": {"get": {
            "summary": "A transfer's status and its events.",
            "parameters": [path_param("transaction_id", "UUID", UUID_PATTERN), position_param(), read_param()],
            "responses": read_errors(json!({"200": answer("The transfer.", "Transfer")})),
        }},
        "/v1/cluster/status": {"get": {
            "summary": "This node, its replica group, leaders, applied and projected indexes, chain head, active version.",
            "responses": {"200": plain("Status.", "ClusterStatus"), "401": error("Unauthorized")},
        }},
        "/v1/cluster/members": {"post": {
            "summary": "Admin, on any member: add a member started with --join, to every partition or to those listed (partition 0 always), through each one's leader. Answers once it has caught up as a learner and became a voter.",
            "requestBody": body("MemberRequest"),
            "responses": {
                "200": plain("The voters now.", "Members"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "413": error("TooLarge"),
                "422": plain("Refused (membership_refused): a node alone, a new member that runs another partition count than the cluster (or does not answer), or a change Raft refuses.", "Error"),
                "500": error("Internal"), "503": error("Unavailable"),
            }
        }},
        "/v1/cluster/partitions/{partition}/replicas": {"post": {
            "summary": "Admin, on any member: give a member of the cluster a replica of the partition, through its leader. Answers once the replica has caught up as a learner (by snapshot when the log was compacted) and became a voter.",
            "parameters": [partition_param()],
            "requestBody": body("ReplicaRequest"),
            "responses": {
                "200": plain("The partition's voters now.", "Members"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "413": error("TooLarge"),
                "422": plain("Refused (membership_refused): no such partition, a node that is not a member, a node alone, or a change Raft refuses.", "Error"),
                "500": error("Internal"), "503": error("Unavailable"),
            }
        }},
        "/v1/cluster/partitions/{partition}/replicas/{id}": {"delete": {
            "summary": "Admin, on any member: remove a member's replica of the partition (a learner first, then out of the group), through its leader. Partition 0 stays on every member.",
            "parameters": [partition_param(), {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64", "minimum": 0}}],
            "responses": {
                "200": plain("The partition's voters now.", "Members"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "422": plain("Refused (membership_refused): partition 0, the last voter, no such partition, or a node alone.", "Error"),
                "500": error("Internal"), "503": error("Unavailable"),
            }
        }},
        "/v1/cluster/partitions/{partition}/split": {"post": {
            "summary": "Admin, on any member: split the partition while it serves. The upper half of its hash range, with the accounts in it (their records, money, reservations and transfers in flight), goes to a new partition, the next id, whose replicas are the parent's; partition 0's leader drives it (the map allocates the id, the parent's log splits at one index, the map routes the range). Calls for the moving range are answered 503 to retry for about one map entry's replication. Every partition must run rules 2.4.0 or later.",
            "parameters": [partition_param()],
            "responses": {
                "200": plain("The split.", "Split"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "422": plain("Refused (split_refused): no such partition, the map full (64 partitions), another split under way, a range of one hash, a version scheduled to switch later in the log, a version before 2.4.0, or a replica of the partition being added or removed (a learner).", "Error"),
                "500": error("Internal"), "503": error("Unavailable"),
            }
        }},
        "/v1/cluster/members/{id}": {"delete": {
            "summary": "Admin, on any member: remove a member from every partition it holds a replica of.",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64", "minimum": 0}}],
            "responses": {
                "200": plain("The voters now.", "Members"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "422": plain("Refused (membership_refused): the last one, or a node alone.", "Error"),
                "500": error("Internal"), "503": error("Unavailable"),
            }
        }},
        "/v1/admin/tokens": {
            "post": {
                "summary": "Admin: create a token. Its secret is shown only in this answer. Any member takes it once it applied the answer's Wallet-Position.",
                "requestBody": body("TokenRequest"),
                "responses": {
                    "201": answer("Created.", "TokenCreated"),
                    "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                    "413": error("TooLarge"), "500": error("Internal"), "503": error("Unavailable"),
                }
            },
            "get": {
                "summary": "Admin: every token (never a secret).",
                "responses": {
                    "200": plain("The tokens.", "TokenList"),
                    "401": error("Unauthorized"), "403": error("Forbidden"),
                }
            }
        },
        "/v1/admin/tokens/{id}": {"delete": {
            "summary": "Admin: revoke a token.",
            "parameters": [path_param("id", "Token id", TOKEN_ID_PATTERN)],
            "responses": {
                "200": answer("Revoked.", "Token"),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "404": error("NotFound"),
                "409": plain("The last admin token (last_admin_token): create another first.", "Error"),
                "500": error("Internal"), "503": error("Unavailable"),
            }
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics.", "security": [],
            "responses": {"200": {"description": "Prometheus text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
        "/healthz": {"get": {
            "summary": "Liveness: the process serves HTTP.", "security": [],
            "responses": {"200": {"description": "Up.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}}}}}},
        }},
        "/readyz": {"get": {
            "summary": "Readiness: whether this node accepts writes.", "security": [],
            "responses": {
                "200": plain("Accepts writes.", "Ready"),
                "503": plain("Does not accept writes now; the reason says why (no_leader, insufficient_storage, stopped).", "Ready"),
            },
        }},
        "/openapi.json": {"get": {
            "summary": "This document.", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.0.", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},
    });
    paths["/v1/admin/backup"] = json!({"get": {
        "summary": "Admin: a consistent online backup of this node: its state, event log and command archive as one stream, which `wallet backup` writes to a directory and `wallet restore` starts a node or a group from.",
        "responses": {
            "200": {"description": "The backup stream.", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "401": error("Unauthorized"), "403": error("Forbidden"),
            "409": plain("This member's command archive does not reach its state (archive_incomplete): back up another member; or the node runs several partitions (backup_refused): back up its data directory while it is stopped.", "Error"),
            "500": error("Internal"),
            "503": plain("The backup holds every write acknowledged before it was asked for, and this member could not confirm the leader's commit index (no_quorum) or apply up to it in time (not_caught_up); retry.", "Error"),
        }
    }});
    paths["/v1/admin/versions"] = versions_paths();
    paths["/v1/admin/versions/{hash}/activate"] = activate_path();
    paths["/v1/admin/versions/{hash}/cancel"] = cancel_path();
    paths["/v1/admin/versions/{hash}/verify"] = verify_path();
    paths
}

fn versions_paths() -> Value {
    let verification = json!({"type": "object", "nullable": true,
        "required": ["through", "batches", "differing"], "properties": {
        "through": {"type": "integer"}, "batches": {"type": "integer"}, "differing": {"type": "integer"}}});
    let version = json!({"type": "object",
        "required": ["hash", "state", "deployed_at", "active_from", "forced", "verification"], "properties": {
        "hash": {"type": "string", "pattern": VERSION_PATTERN},
        "state": {"type": "string", "enum": ["deployed", "verified", "scheduled", "active", "retired"]},
        "deployed_at": {"type": "integer", "description": "The log index of its deploy entry."},
        "active_from": {"type": "integer", "nullable": true, "description": "The first index its latest activation runs it from."},
        "forced": {"type": "string", "nullable": true, "description": "The reason its latest activation was forced with."},
        "verification": verification}});
    let deployed = json!({"type": "object", "required": ["hash", "deployed_at", "new"], "properties": {
        "hash": {"type": "string", "pattern": VERSION_PATTERN},
        "deployed_at": {"type": "integer"}, "new": {"type": "boolean"}}});
    let deployed_answer = |description: &str| {
        json!({"description": description,
        "headers": {"Wallet-Position": {"$ref": "#/components/headers/WalletPosition"}},
        "content": {"application/json": {"schema": deployed.clone()}}})
    };
    json!({
        "get": {
            "summary": "Admin or auditor: every deployed state-machine version, where it stands and from which log index it runs.",
            "responses": {
                "200": {"description": "Oldest first.", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["versions"], "properties": {
                        "versions": {"type": "array", "items": version}}}}}},
                "401": error("Unauthorized"), "403": error("Forbidden"), "500": error("Internal"),
            }
        },
        "post": {
            "summary": "Admin: deploy a state-machine version (a WebAssembly component) through the log. Refused (422 invalid_version) if it does not compile, imports anything, implements another contract or fails to instantiate.",
            "requestBody": {"required": true, "content": {"application/wasm": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {
                "201": deployed_answer("Deployed."),
                "200": deployed_answer("Deployed before, at `deployed_at`."),
                "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
                "413": plain("The body is over the limit (body_too_large).", "Error"),
                "422": plain("The component cannot run here (invalid_version).", "Error"),
                "500": error("Internal"), "503": error("Unavailable"),
            }
        }
    })
}

fn verify_path() -> Value {
    json!({"post": {
        "summary": "Admin: replay this member's recorded history, from genesis or (`from=snapshot`) only the entries after its current snapshot, through the version beside the versions that ran it, and record the outcome in the log (activation requires an identical one). Answers JSON lines while it runs: `{\"progress\": {\"index\", \"through\"}}`, then `{\"report\": {...}, \"recorded_at\"}` (the report grades each differing batch: outcome_changed, event_changed or state_changed_only, with the first differing outcome, event or write of each side; own_state_writes counts the candidate's writes under keys no recorded version wrote, its new state, which are not differences; a candidate with a migration is compared in its own layout), or `{\"error\", \"message\"}` (such as `migration_failed`: the candidate's migration failed on the state).",
        "parameters": [path_param("hash", "The version's SHA-256, in hex", VERSION_PATTERN),
            {"name": "from", "in": "query", "required": false, "description": "Where the replay starts: `genesis`, or `snapshot`: after this member's current snapshot, on the state it holds (the log records the window; 409 `no_snapshot` when there is none yet, and an error line `empty_window` when no entry was applied after it).", "schema": {"type": "string", "enum": ["genesis", "snapshot"], "default": "genesis"}}],
        "responses": {
            "200": {"description": "The verification's progress and report, as JSON lines.",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
            "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
            "404": error("NotFound"),
            "409": plain("Refused: no_snapshot (`from=snapshot` on a member that holds none yet).", "Error"),
            "500": error("Internal"),
        }
    }})
}

fn cancel_path() -> Value {
    json!({"post": {
        "summary": "Admin: withdraw the version's activation that the log has not reached yet (one made with a later `at_index`), through the log. Refused once the log has reached it.",
        "parameters": [path_param("hash", "The version's SHA-256, in hex", VERSION_PATTERN)],
        "responses": {
            "200": {"description": "Cancelled.",
                "headers": {"Wallet-Position": {"$ref": "#/components/headers/WalletPosition"}},
                "content": {"application/json": {"schema": {"type": "object", "required": ["hash", "cancelled_from"], "properties": {
                    "hash": {"type": "string", "pattern": VERSION_PATTERN}, "cancelled_from": {"type": "integer"}}}}}},
            "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
            "404": error("NotFound"),
            "409": plain("Refused: not_scheduled (no activation of it that the log has not reached).", "Error"),
            "500": error("Internal"), "503": error("Unavailable"),
        }
    }})
}

fn activate_path() -> Value {
    json!({"post": {
        "summary": "Admin: activate a deployed version through the log, from `at_index` (the entry after the activation by default), so that every replica switches at the same index. Refused unless its last verification found history identical, or `force_reason` says why (recorded in the log).",
        "parameters": [path_param("hash", "The version's SHA-256, in hex", VERSION_PATTERN)],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": false, "properties": {
                "at_index": {"type": "integer", "minimum": 0, "maximum": u64::MAX},
                "force_reason": {"type": "string", "minLength": 1, "maxLength": 1024}}}}}},
        "responses": {
            "200": {"description": "Activated.",
                "headers": {"Wallet-Position": {"$ref": "#/components/headers/WalletPosition"}},
                "content": {"application/json": {"schema": {"type": "object", "required": ["hash", "active_from"], "properties": {
                    "hash": {"type": "string", "pattern": VERSION_PATTERN}, "active_from": {"type": "integer"}}}}}},
            "400": error("BadRequest"), "401": error("Unauthorized"), "403": error("Forbidden"),
            "404": error("NotFound"),
            "409": plain("Refused: not_verified, activation_pending, already_active, index_passed, or first_activation_at_index (a group's first version runs from the next entry).", "Error"),
            "500": error("Internal"), "503": error("Unavailable"),
        }
    }})
}

/// A request that moves money, as one variant per group of currencies
/// with the same minor-unit digits: each says which amounts its currencies
/// can carry.
fn money_request(mut properties: Value, required: &[&str], example: Value) -> Value {
    let variants: Vec<Value> = (0..=4u8)
        .filter_map(|digits| {
            let currencies: Vec<&str> = codes().filter(|c| exponent(c) == Some(digits)).collect();
            if currencies.is_empty() {
                return None;
            }
            properties["currency"] = json!({"type": "string", "enum": currencies});
            properties["amount"] = json!({"type": "string",
                "pattern": amount_pattern(u32::from(digits)), "maxLength": AMOUNT_CHARS_MAX,
                "description": format!("A decimal with at most {digits} digits after the point.")});
            Some(json!({"type": "object", "additionalProperties": false,
                "required": required, "properties": properties.clone()}))
        })
        .collect();
    json!({"oneOf": variants, "example": example,
        "description": "The amount is a positive decimal string with at most its currency's minor-unit digits (USD 2, JPY 0, BHD 3). More minor units than a signed 64-bit integer holds is refused with 422 amount_too_large."})
}

fn error_response(description: &str, retry: bool) -> Value {
    let mut response = json!({"description": description,
        "content": {"application/json": {"schema": reference("Error")}}});
    if retry {
        response["headers"] = json!({"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}});
    }
    response
}

fn components() -> Value {
    let signed_amount = json!({"type": "string", "example": "-12.34",
        "description": "Decimal with exactly the currency's minor-unit digits."});
    let account = json!({"type": "string", "pattern": ACCOUNT_ID_PATTERN, "example": "alice"});
    let principal = json!({"type": "string", "pattern": PRINCIPAL_PATTERN, "example": "alice"});
    let uuid = json!({"type": "string", "format": "uuid", "pattern": UUID_PATTERN});
    let currency = reference("Currency");
    let kind = json!({"type": "string", "enum": ["standard", "system", "credit"]});
    let credit_limit = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX,
        "description": "How far below zero the account may go, in minor units of any currency."});
    let time = json!({"type": "string", "format": "date-time"});
    let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
    // An outcome's reason: the rules' reasons, and the edge's refusal of
    // more minor units than an amount may have.
    let mut outcome_reasons = reasons.clone();
    outcome_reasons.push("amount_too_large");
    let account_fields = |kinds: Value| {
        json!({
        "account_id": account, "owner": principal, "kind": {"type": "string", "enum": kinds}})
    };
    let mut credit_fields = account_fields(json!(["credit"]));
    credit_fields["credit_limit_minor"] = credit_limit.clone();
    let range = json!({"type": "object", "required": ["start", "end"],
        "description": "The CRC-32C hashes of the account ids this partition holds, start included, end excluded (2^32 at the top); a split gives the upper half to a new partition.",
        "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}}});
    let mut components = json!({
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
            "description": "Roles: admin (everything), client (moves money out of accounts it owns, reads them), auditor (reads everything, writes nothing)."}},
        "parameters": {
            "WalletPosition": {"name": "Wallet-Position", "in": "header", "required": false,
                "description": "A position a write answered with: the read waits (bounded) until it reflects it, else 503 not_caught_up.",
                "schema": {"type": "string", "pattern": POSITION_PATTERN}},
            "WalletRead": {"name": "Wallet-Read", "in": "header", "required": false,
                "description": "linearizable: the read reflects every write acknowledged before it began, anywhere in the group (the leader confirms its read index with a majority; 503 no_quorum without one).",
                "schema": {"type": "string", "enum": ["linearizable"]}},
        },
        "headers": {
            "WalletPosition": {"description": "partition:index: where a write was applied, or what a read reflects.",
                "schema": {"type": "string", "pattern": POSITION_PATTERN}},
            "WalletRead": {"name": "Wallet-Read", "in": "header", "required": false,
                "description": "linearizable: the read reflects every write acknowledged before it began, anywhere in the group (the leader confirms its read index with a majority; 503 no_quorum without one).",
                "schema": {"type": "string", "enum": ["linearizable"]}},
        },
        "responses": {
            "BadRequest": error_response("Malformed input: the request breaks this document's schema; nothing was submitted.", false),
            "Unauthorized": {"description": "No, unknown or expired bearer token (unauthorized).",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": reference("Error")}}},
            "Forbidden": error_response("The token may not do this (forbidden), or a client reads an account it does not own.", false),
            "NotFound": error_response("No such account (account_not_found), transfer (transfer_not_found) or token (token_not_found).", false),
            "TooLarge": error_response("The body is over 4 MiB (body_too_large).", false),
            "Overloaded": error_response("Too much queued (overloaded); retry with the same transaction_id.", true),
            "Unavailable": error_response("No leader or no majority, shutting down, stopped, this member is fenced, or an account moved to another partition on the way (not_leader, no_quorum, shutting_down, stopped, diverged, moved); retry with the same transaction_id.", true),
            "NotCaughtUp": error_response("The read models do not reflect the position asked for yet (not_caught_up), no majority confirmed a linearizable read (no_quorum), or this member is fenced (diverged); retry, or read from another member.", true),
            "PositionUnknown": error_response("No write was answered with that position: it is past the end of its partition's log, or names a partition the cluster's map does not have (position_unknown).", false),
            "InsufficientStorage": error_response("The disk is at its free-space floor (insufficient_storage); reads still serve; retry once space returns.", true),
            "Internal": error_response("Internal error (internal); safe to retry with the same transaction_id.", false),
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error", "message"], "properties": {
                "error": {"type": "string", "description": "Stable snake_case code."},
                "message": {"type": "string"}}},
            "Currency": {"type": "string", "enum": codes().collect::<Vec<_>>(),
                "description": "An ISO 4217 code with a minor unit."},
            "TransferRequest": money_request(
                json!({"from_account": account, "to_account": account, "transaction_id": uuid}),
                &["from_account", "to_account", "amount", "currency", "transaction_id"],
                json!({"from_account": "alice", "to_account": "bob", "amount": "12.34",
                    "currency": "USD", "transaction_id": "0b7e1f5a-2c1d-4d1e-9f00-000000000001"})),
            "BatchRequest": {"type": "object", "additionalProperties": false, "required": ["transfers"],
                "properties": {"transfers": {"type": "array", "minItems": 1, "maxItems": 8190, "items": reference("TransferRequest")}}},
            "Outcome": {"type": "object", "additionalProperties": false, "required": ["status", "transaction_id"], "properties": {
                "status": {"type": "string", "enum": ["success", "failed"]},
                "transaction_id": uuid,
                "reason": {"type": "string", "enum": outcome_reasons}}},
            "BatchResponse": {"type": "object", "required": ["results"], "properties": {
                "results": {"type": "array", "items": reference("Outcome")}}},
            "OpeningsRequest": {"type": "object", "additionalProperties": false, "required": ["accounts"],
                "properties": {"accounts": {"type": "array", "minItems": 1, "maxItems": 8190, "items": reference("AccountRequest")}}},
            "Opening": {"type": "object", "additionalProperties": false, "required": ["account_id", "status"], "properties": {
                "account_id": account,
                "status": {"type": "string", "enum": ["opened", "failed"]},
                "reason": {"type": "string", "enum": reasons}}},
            "OpeningsResponse": {"type": "object", "required": ["results"], "properties": {
                "results": {"type": "array", "items": reference("Opening")}}},
            "CashRequest": money_request(
                json!({"account_id": account, "transaction_id": uuid}),
                &["account_id", "amount", "currency", "transaction_id"],
                json!({"account_id": "alice", "amount": "12.34", "currency": "USD",
                    "transaction_id": "5a0c7a3e-0d4e-4b8e-9a53-4a9c0f1d2e01"})),
            "AccountRequest": {"oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["account_id"],
                    "properties": account_fields(json!(["standard", "system"]))},
                {"type": "object", "additionalProperties": false, "required": ["account_id", "kind", "credit_limit_minor"],
                    "properties": credit_fields},
            ], "description": "kind defaults to standard; credit_limit_minor is given exactly with kind credit. Optional fields are left out, never null."},
            "BalanceEntry": {"type": "object", "required": ["available", "reserved"], "properties": {
                "available": signed_amount, "reserved": signed_amount}},
            "Account": {"type": "object", "required": ["account_id", "owner", "kind", "balances"], "properties": {
                "account_id": account, "owner": {"type": "string", "nullable": true}, "kind": kind,
                "credit_limit_minor": credit_limit,
                "balances": {"type": "object", "additionalProperties": reference("BalanceEntry"),
                    "example": {"USD": {"available": "12.34", "reserved": "0.00"}}}}},
            "Balance": {"type": "object", "required": ["account_id", "currency", "available", "reserved", "as_of"], "properties": {
                "account_id": account, "currency": currency, "available": signed_amount, "reserved": signed_amount,
                "as_of": time}},
            "Event": {"type": "object", "required": ["seq", "log_index", "timestamp", "type"], "properties": {
                "seq": {"type": "integer"}, "log_index": {"type": "integer"},
                "timestamp": time,
                "type": {"type": "string", "enum": EVENT_NAMES},
                "transaction_id": uuid, "account": account, "currency": currency, "amount": {"type": "string"},
                "owner": {"type": "string", "nullable": true}, "kind": kind,
                "credit_limit_minor": {"type": "integer"},
                "reason": {"type": "string", "enum": reasons}}},
            "History": {"type": "object", "required": ["account_id", "events", "next"], "properties": {
                "account_id": account, "events": {"type": "array", "items": reference("Event")},
                "next": {"type": "integer", "nullable": true, "description": "Pass as `after`; null at the end."}}},
            "Transfer": {"type": "object", "required": ["transaction_id", "status", "events"], "properties": {
                "transaction_id": uuid,
                "status": {"type": "string", "enum": ["pending", "success", "failed"]},
                "reason": {"type": "string", "enum": reasons},
                "events": {"type": "array", "items": reference("Event")}}},
            "Partition": {"type": "object", "required": ["partition", "members", "range", "applied_index", "projected_index", "chain_head", "active_version"], "properties": {
                "partition": {"type": "integer"}, "leader": {"type": "integer", "nullable": true},
                "members": {"type": "array", "items": {"type": "integer"}},
                "applied_index": {"type": "integer"},
                "projected_index": {"type": "integer"},
                "projector_lag_records": {"type": "integer"},
                "range": range,
                "in_flight": {"type": "object", "additionalProperties": {"type": "integer"},
                    "description": "Minor units per currency that left for (or arrived from) another partition and are not settled there yet."},
                "chain_head": {"type": "string"}, "active_version": {"type": "string", "nullable": true},
                "transfers_in_flight": {"type": "integer", "description": "Cross-partition transfers this partition started and has not finished."},
                "hosted": {"type": "boolean", "description": "Whether this node is one of the partition's voters. When not, its reads and writes go to a member that is, and the rest is a stale replica's."}}},
            "ClusterStatus": {"type": "object", "required": ["node_id", "nodes", "partitions", "coordinator"], "properties": {
                "node_id": {"type": "integer"}, "nodes": {"type": "array", "items": {"type": "integer"}},
                "partitions": {"type": "array", "items": reference("Partition")},
                "coordinator": {"type": "object", "required": ["stages", "oldest_ms"], "properties": {
                    "stages": {"type": "object", "additionalProperties": {"type": "integer"},
                        "description": "Cross-partition transfers this node coordinates, by the step they wait on (placing, crediting, settling, dropping, releasing, saga_crediting, refunding)."},
                    "oldest_ms": {"type": "integer", "description": "How long the oldest of them has been driven here."}}}}},
            "TokenRequest": {"oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["role", "owner"], "properties": {
                    "role": {"type": "string", "enum": ["client"]}, "owner": principal,
                    "expires_in_seconds": {"type": "integer", "minimum": 1, "maximum": 315_360_000}}},
                {"type": "object", "additionalProperties": false, "required": ["role"], "properties": {
                    "role": {"type": "string", "enum": ["admin", "auditor"]}, "owner": principal,
                    "expires_in_seconds": {"type": "integer", "minimum": 1, "maximum": 315_360_000}}},
            ], "description": "A client token needs the owner whose accounts it may debit; for the others, owner names the principal (role-id by default)."},
            "Token": {"type": "object", "required": ["id", "role", "owner", "created_at", "expires_at"], "properties": {
                "id": {"type": "string", "pattern": TOKEN_ID_PATTERN},
                "role": {"type": "string", "enum": ["admin", "client", "auditor"]},
                "owner": principal, "created_at": time,
                "expires_at": {"type": "string", "format": "date-time", "nullable": true}}},
            "TokenCreated": {"allOf": [reference("Token"), {"type": "object", "required": ["token"], "properties": {
                "token": {"type": "string", "description": "The secret: shown once."}}}]},
            "TokenList": {"type": "object", "required": ["tokens"], "properties": {
                "tokens": {"type": "array", "items": reference("Token")}}},
            "Ready": {"type": "object", "required": ["status"], "properties": {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "reason": {"type": "string"}}},
        }
    });
    // Kept apart: one more schema inside the macro above passes its
    // recursion limit.
    components["schemas"]["MemberRequest"] = json!({"type": "object", "additionalProperties": false,
        "required": ["node_id", "address"], "properties": {
            "node_id": {"type": "integer", "format": "int64", "minimum": 1},
            "address": {"type": "string", "description": "HOST:PORT the members reach it at.", "example": "10.0.0.4:8080",
                "pattern": "^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"},
            "partitions": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 63}, "maxItems": 64,
                "description": "The partitions it takes a replica of (default: every one); partition 0, which holds the API tokens, always."}}});
    components["schemas"]["ReplicaRequest"] = json!({"type": "object", "additionalProperties": false,
        "required": ["node_id"], "properties": {
            "node_id": {"type": "integer", "format": "int64", "minimum": 1, "description": "A member of the cluster."}}});
    components["schemas"]["Partition"]["properties"]["diverged"] = json!({"type": "object",
        "required": ["seq", "held", "majority"],
        "description": "Present when this replica was fenced: its event chain head differed from the majority's at record seq.",
        "properties": {"seq": {"type": "integer"}, "held": {"type": "string"}, "majority": {"type": "string"}}});
    components["schemas"]["Split"] = json!({"type": "object",
        "required": ["partition", "child", "index", "partitions"], "properties": {
            "partition": {"type": "integer", "minimum": 0, "description": "The partition that split: it keeps the lower half of its range."},
            "child": {"type": "integer", "minimum": 1, "description": "The new partition: the upper half."},
            "index": {"type": "integer", "minimum": 1, "description": "The split entry's index in the parent's log."},
            "partitions": {"type": "integer", "minimum": 2, "description": "How many partitions the cluster runs now."}}});
    components["schemas"]["Members"] = json!({"type": "object", "required": ["members"], "properties": {
        "members": {"type": "array", "items": {"type": "integer", "format": "int64"}}}});
    components
}

pub async fn document() -> Json<Value> {
    Json(spec())
}

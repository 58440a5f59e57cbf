"""Schemathesis hooks for the wallet (loaded by scripts/schemathesis.sh).

A transaction id names one money movement: a client that means a new
movement sends a new id, and the same id with another body is refused with
409 (idempotency_conflict), as documented. Generated requests reuse a few
ids over and over, so almost every case after the first would be such a
conflict and the operation would never be served; here every well-formed id
is replaced by a fresh one, as a real client's would be. Malformed ids are
left alone, so negative cases stay negative.
"""

import re
import uuid

import schemathesis

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def fresh(movement):
    if isinstance(movement, dict):
        id = movement.get("transaction_id")
        if isinstance(id, str) and UUID.match(id):
            movement["transaction_id"] = str(uuid.uuid4())


# A state-machine component is uploaded as raw bytes, like any binary body.
schemathesis.serializer.alias("application/wasm", "application/octet-stream")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    body = case.body
    fresh(body)
    if isinstance(body, dict) and isinstance(body.get("transfers"), list):
        for transfer in body["transfers"]:
            fresh(transfer)

"""Update ids that carry a client's Idempotency-Key, and a workflow's memory of them.

The API sends an update with the request's ``Idempotency-Key`` (scoped to the caller's
organisation) as its id, or with no id, and the SDK then picks a random one. Only the first kind
can come back: a client retrying the same key. Temporal de-duplicates update ids within a run;
to apply a retried key once across continue-as-new too (``workflows/once.py``), a task-owning
workflow remembers the client-key ids it applied, and only those, for ``REMEMBERED_FOR`` (by
``workflow.now()``), at most ``REMEMBERED_MOST`` of them, each as a fixed-size digest.

Both the API (``client_update_id``) and the workflows (``is_client_update_id``) use this module,
so what counts as a client key is decided in one place.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import NamedTuple
from uuid import UUID

# The id of an update sent on behalf of a client's Idempotency-Key starts with this.
CLIENT_KEY_PREFIX = "key:"
# Retries of a lost answer come within minutes; a key older than this is a new request.
REMEMBERED_FOR = dt.timedelta(hours=24)
# At most this many per workflow, the newest kept: bounds the state of a busy case (about 70
# bytes each in the continue-as-new input).
REMEMBERED_MOST = 64


def client_update_id(org_id: UUID, key: str) -> str:
    """The update id for a request with ``Idempotency-Key: key`` from organisation ``org_id``
    (keys are per organisation: two organisations' equal keys must not collide)."""
    return f"{CLIENT_KEY_PREFIX}{org_id}:{key}"


def is_client_update_id(update_id: str) -> bool:
    """Whether an update id carries a client's key (and may come again after a lost answer)."""
    return update_id.startswith(CLIENT_KEY_PREFIX)


def digest(update_id: str) -> str:
    """A fixed-size stand-in for an id (keys may be 255 characters): 128 bits of SHA-256, in 22
    characters of URL-safe base64."""
    raw = hashlib.sha256(update_id.encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class AppliedUpdate(NamedTuple):
    """An applied client-key update, as a workflow keeps it (a JSON array of three):
    the digest of its id, when it was applied (Unix seconds), the id of what it created."""

    id: str
    at: int
    result_id: str | None = None


def recall(applied: list[AppliedUpdate], update_id: str, now: dt.datetime) -> AppliedUpdate | None:
    """The remembered application of ``update_id``, unless it is forgotten (older than
    ``REMEMBERED_FOR``) or was never remembered (not a client key). Changes nothing: it runs in
    update validators."""
    if not is_client_update_id(update_id):
        return None
    wanted, since = digest(update_id), _seconds(now - REMEMBERED_FOR)
    return next((u for u in applied if u.id == wanted and u.at > since), None)


def remember(
    applied: list[AppliedUpdate], update_id: str, result_id: str | None, now: dt.datetime
) -> None:
    """Remember that ``update_id`` was applied now (if it is a client key), forgetting ids
    older than ``REMEMBERED_FOR`` and all but the newest ``REMEMBERED_MOST``."""
    since = _seconds(now - REMEMBERED_FOR)
    applied[:] = [u for u in applied if u.at > since]
    if is_client_update_id(update_id):
        applied.append(AppliedUpdate(digest(update_id), _seconds(now), result_id))
    del applied[:-REMEMBERED_MOST]


def _seconds(moment: dt.datetime) -> int:
    return int(moment.timestamp())

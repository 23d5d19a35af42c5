"""Which update ids a workflow remembers, for how long, and how many (domain/update_ids.py)."""

from __future__ import annotations

import datetime as dt
import uuid

from domain.update_ids import (
    REMEMBERED_FOR,
    REMEMBERED_MOST,
    AppliedUpdate,
    client_update_id,
    digest,
    is_client_update_id,
    recall,
    remember,
)

ORG = uuid.UUID("5b0c3a56-0d55-4f6e-9a49-52b3f0a1d2c4")
NOON = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def test_client_key_ids_are_recognised_and_scoped_to_the_organisation() -> None:
    ours = client_update_id(ORG, "k-1")
    assert is_client_update_id(ours)
    assert client_update_id(uuid.uuid4(), "k-1") != ours
    # What the SDK picks when the API sends no id, and the creation's fixed id.
    assert not is_client_update_id(str(uuid.uuid4()))
    assert not is_client_update_id("submit")


def test_an_update_without_a_client_key_leaves_nothing_remembered() -> None:
    applied: list[AppliedUpdate] = []
    remember(applied, str(uuid.uuid4()), "result", NOON)
    remember(applied, "submit", None, NOON)
    assert applied == []
    assert recall(applied, "submit", NOON) is None


def test_a_client_key_is_recalled_with_its_result_as_a_fixed_size_digest() -> None:
    applied: list[AppliedUpdate] = []
    long_key = client_update_id(ORG, "x" * 255)
    remember(applied, long_key, "payment-1", NOON)
    assert recall(applied, long_key, NOON + dt.timedelta(hours=1)) == AppliedUpdate(
        digest(long_key), int(NOON.timestamp()), "payment-1"
    )
    assert len(applied[0].id) == 22
    assert recall(applied, client_update_id(ORG, "other"), NOON) is None


def test_an_id_older_than_24_hours_is_forgotten() -> None:
    applied: list[AppliedUpdate] = []
    old, new = client_update_id(ORG, "old"), client_update_id(ORG, "new")
    remember(applied, old, None, NOON)
    later = NOON + REMEMBERED_FOR + dt.timedelta(seconds=1)
    # Not recalled any more, even before anything removes it ...
    assert recall(applied, old, NOON + REMEMBERED_FOR - dt.timedelta(seconds=1)) is not None
    assert recall(applied, old, later) is None
    # ... and removed by the next one remembered (also an update without a key).
    remember(applied, str(uuid.uuid4()), None, later)
    assert applied == []
    remember(applied, new, None, later)
    assert [u.id for u in applied] == [digest(new)]


def test_at_most_the_newest_ids_are_remembered() -> None:
    applied: list[AppliedUpdate] = []
    keys = [client_update_id(ORG, f"k-{n}") for n in range(REMEMBERED_MOST + 6)]
    for n, key in enumerate(keys):
        remember(applied, key, None, NOON + dt.timedelta(seconds=n))
    assert len(applied) == REMEMBERED_MOST
    assert [recall(applied, key, NOON) is not None for key in keys[:6]] == [False] * 6
    assert all(recall(applied, key, NOON) is not None for key in keys[6:])

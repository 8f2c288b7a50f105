"""The audit trail keeps every event of concurrent writers and finds an edited one."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from aimass_pipeline.core import audit
from aimass_pipeline.core.lake import Lake


def test_concurrent_events_are_all_kept_in_time_order(tmp_path):
    lake = Lake(str(tmp_path))
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: audit.record(
                    lake, action=audit.PROMOTE, use_case="uc", evidence={"i": i}, who="op"
                ),
                range(64),
            )
        )
    events = audit.read(lake, "uc")
    assert sorted(e["evidence"]["i"] for e in events) == list(range(64))
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    audit.verify(events)


def test_read_until_answers_what_was_known_at_a_time(tmp_path):
    lake = Lake(str(tmp_path))
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for hours, version in ((0, "1"), (2, "2"), (4, "1")):
        audit.record(
            lake,
            action=audit.PROMOTE,
            use_case="uc",
            evidence={"version": version},
            at=t0 + dt.timedelta(hours=hours),
        )
    known = audit.read(lake, "uc", until=t0 + dt.timedelta(hours=3))
    assert [e["evidence"]["version"] for e in known] == ["1", "2"]
    assert audit.read(lake, "other") == []


def test_an_edited_event_is_named(tmp_path):
    lake = Lake(str(tmp_path))
    event = audit.record(lake, action=audit.ROLLBACK, use_case="uc", evidence={"to": "3"})
    [path] = list((tmp_path / "audit" / "uc").iterdir())
    edited = json.loads(path.read_text()) | {"evidence": {"to": "4"}}
    path.write_text(json.dumps(edited))
    with pytest.raises(audit.AuditTampered, match=event["id"]):
        audit.verify(audit.read(lake, "uc"))


def test_an_unknown_action_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(Lake(str(tmp_path)), action="delete_everything", use_case="uc")

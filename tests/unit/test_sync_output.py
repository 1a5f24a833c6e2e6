"""What sync prints: result lines, the live block on a terminal, --json, the summary; and the
pure expansion of entries into images."""

from __future__ import annotations

import io
import json
import time

import pytest

from imgmirror.cli.sync import SyncLines, _summary, result_line
from imgmirror.model.digest import Digest
from imgmirror.syncing.file import parse_sync_file
from imgmirror.syncing.items import expand_entry
from imgmirror.syncing.report import SyncReport, SyncResult
from imgmirror.syncing.tagselect import NoTagsSelected

DIGEST = "sha256:" + "a" * 64
COPIED = SyncResult("q.io/a:1", "r.io/m/a:1", DIGEST, "copied", 2048, None, "f:3")
FAILED = SyncResult("q.io/b", "r.io/m", None, "failed", 0, "no tag matches all tags", "f:4")


OLD = "sha256:" + "b" * 64
MOVED = SyncResult("q.io/a:2", "r.io/m/a:2", DIGEST, "moved", 0, None, "f:3", old_digest=OLD)
SAME = SyncResult("q.io/a:3", "r.io/m/a:3", DIGEST, "unchanged", 0, None, "f:3")


def test_result_lines():
    assert result_line(COPIED) == f"copied    q.io/a:1 -> r.io/m/a:1 {DIGEST} (2.0 KiB)"
    assert result_line(MOVED) == f"moved     q.io/a:2 -> r.io/m/a:2 {OLD} -> {DIGEST} (0 B)"
    assert result_line(FAILED) == "failed    q.io/b -> r.io/m: no tag matches all tags (f:4)"
    drift = SyncResult("q.io/a:2", "r.io/m/a:2", DIGEST, "would-move", old_digest=OLD)
    assert result_line(drift) == f"would move q.io/a:2 -> r.io/m/a:2 {OLD} -> {DIGEST}"
    error = "q.io/c:1 does not exist at the source; check the tag (f:9)"
    missing = SyncResult("q.io/c:1", "r.io/m/c:1", None, "missing-at-source", 0, error, "f:9")
    assert result_line(missing).endswith("check the tag (f:9)")  # the origin once


def test_unchanged_lines_only_with_verbose(capsys):
    quiet_ones = SyncLines(as_json=False, live=None)
    for result in (COPIED, SAME, MOVED):
        quiet_ones.finished(result)
    assert capsys.readouterr().out.splitlines() == [result_line(COPIED), result_line(MOVED)]
    SyncLines(as_json=False, live=None, verbose=True).finished(SAME)
    assert capsys.readouterr().out == result_line(SAME) + "\n"


def test_heartbeat_when_piped():
    beats = io.StringIO()
    lines = SyncLines(as_json=False, live=None, heartbeat=beats, interval=0.02)
    lines.expanded(3)
    lines.started("q.io/a:1", "r.io/m/a:1")
    lines.blob_advanced(Digest.parse(DIGEST), 1536)
    deadline = time.monotonic() + 5
    while "in flight" not in beats.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    lines.close()
    first = beats.getvalue().splitlines()[0]
    assert first.startswith("imgmirror: sync: 0/3 images done, 1 in flight (longest q.io/a:1 ")
    assert "1.5 KiB at " in first
    count = len(beats.getvalue().splitlines())
    time.sleep(0.05)
    assert len(beats.getvalue().splitlines()) == count  # stopped by close()


def test_live_block_on_a_terminal_and_lines_on_stdout(capsys):
    live = io.StringIO()
    lines = SyncLines(as_json=False, live=live)
    lines.expanded(2)
    lines.started("q.io/a:1", "r.io/m/a:1")
    lines.blob_advanced(Digest.parse(DIGEST), 2048)
    lines.finished(COPIED)
    lines.close()
    assert capsys.readouterr().out == result_line(COPIED) + "\n"
    drawn = live.getvalue()
    assert "… q.io/a:1" in drawn
    assert "1/2 images done" in drawn
    assert drawn.endswith("\r")  # the block is erased at the end


def test_json_lines_and_quiet(capsys):
    SyncLines(as_json=True, live=None).finished(FAILED)
    assert json.loads(capsys.readouterr().out) == {
        "source": "q.io/b", "destination": "r.io/m", "digest": None, "action": "failed",
        "state": "failed", "bytes_copied": 0, "error": "no tag matches all tags",
        "origin": "f:4", "old_digest": None, "requests": 0, "seconds": 0.0,
    }  # fmt: skip
    SyncLines(as_json=False, live=None, quiet=True).finished(COPIED)
    assert capsys.readouterr().out == ""


def test_summary():
    report = SyncReport((COPIED, FAILED, COPIED), 1.23456)
    assert report.summary() == {
        "copied": 2, "moved": 0, "unchanged": 0, "failed": 1, "bytes_copied": 4096,
        "requests": 0, "rate_limited": 0, "seconds": 1.235,
    }  # fmt: skip
    assert not report.ok
    dry = SyncReport((SyncResult("a", "b", DIGEST, "would-copy"),), 0.1, dry_run=True)
    assert dry.summary()["would_copy"] == 1
    assert _summary(SyncReport((COPIED, MOVED, SAME), 1.0)).startswith(
        "sync: 1 copied, 1 moved, 1 unchanged, 0 failed; 2.0 KiB, 0 requests in 1.0 s"
    )
    drift = SyncResult("a", "b", DIGEST, "would-move", old_digest=OLD)
    checked = SyncReport((drift, SAME), 0.5, dry_run=True, check=True)
    assert _summary(checked).startswith(
        "sync --check: out of sync: 0 missing, 1 moved at the destination; 1 in sync, 0 failed"
    )


def test_expand_entry():
    spec = parse_sync_file(
        "defaults: {to: r.io/m}\nimages:\n  - q.io/x@" + DIGEST + "\n"
        "  - repository: q.io/y\n    semver: '^1'\n    newest: 2\n",
        "f.yaml",
    )
    by_digest, repo = spec.entries
    (item,) = expand_entry(by_digest, None)
    assert str(item.destination) == f"r.io/m/x@{DIGEST}"
    items = expand_entry(repo, ["0.9", "1.0", "1.2", "1.1", "2.0", "latest"])
    assert [str(i.source) for i in items] == ["q.io/y:1.2", "q.io/y:1.1"]
    assert [str(i.destination) for i in items] == ["r.io/m/y:1.2", "r.io/m/y:1.1"]
    assert {i.origin for i in items} == {"f.yaml:4"}
    with pytest.raises(NoTagsSelected):
        expand_entry(repo, ["2.0"])

"""Judge the rows against the issue's targets and write ``docs/benchmarks.md``.

The document is generated from one run: the machine (CPU model, cores, memory), the tool
versions and the date, the table of medians, ratios and peak RSS, each target with whether it
was met, and the text on what bounds the results.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from .measure import imgmirror_argv
from .scenarios import Row

__all__ = ["Check", "judge", "machine_facts", "render", "summary_line", "write"]

RSS_LIMIT_MIB = 100.0
#: Peak RSS with the 1 GiB layer may exceed the 1 MiB layer's by this much and count as "the same".
RSS_GROWTH_MIB = 8.0


@dataclass(frozen=True)
class Check:
    """One target and its outcome (``met`` is None when it could not be measured)."""

    target: str
    met: bool | None
    measured: str


def _first_line(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine_facts() -> dict[str, str]:
    """CPU, cores, memory, OS and tool versions, for the report header."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    return {
        "CPU": f"{model}, {os.cpu_count()} cores",
        "Memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "Python": sys.version.split()[0],
        "imgmirror": _first_line(imgmirror_argv("--version")),
        "httpx": httpx.__version__,
        "skopeo": _first_line(["skopeo", "--version"]),
        "docker-registry": _first_line(["docker-registry", "--version"]),
        "curl": _first_line(["curl", "--version"]),
        "Date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _find(rows: Sequence[Row], operation: str, image: str) -> Row | None:
    for row in rows:
        if row.operation == operation and row.image.name == image and not row.skipped:
            return row
    return None


def _ratio(row: Row) -> float | None:
    if not row.imgmirror or not row.skopeo:
        return None
    return row.imgmirror.median / row.skopeo.median


def judge(rows: Sequence[Row], main: str, big: str, small: str) -> list[Check]:
    """Every target of the issue, measured on ``rows``."""
    checks: list[Check] = []
    for name in (main, big):
        cold = _find(rows, "cold copy", name)
        if cold is None:
            continue
        ratio = _ratio(cold)
        assert ratio is not None
        checks.append(
            Check(f"cold copy ({name}): imgmirror/skopeo <= 1.0", ratio <= 1.0, f"{ratio:.2f}")
        )
        if cold.curl:
            over = cold.imgmirror.median / cold.curl.median
            checks.append(
                Check(
                    f"cold copy ({name}): within 15% of curl | curl",
                    over <= 1.15,
                    f"{cold.imgmirror.median:.2f} s vs {cold.curl.median:.2f} s ({over - 1:+.0%})",
                )
            )
    repeat = _find(rows, "repeat copy", main)
    if repeat is not None:
        moved = repeat.facts.get("bytes_copied", 0)
        checks.append(
            Check(
                f"repeat copy ({main}): under 0.5 s, no blob bytes moved",
                repeat.imgmirror.median < 0.5 and moved == 0,
                f"{repeat.imgmirror.median:.2f} s, {moved} bytes moved",
            )
        )
    for operation, limit in (("save", 0.5), ("save --format legacy", 1.0)):
        for name in (main, big):
            row = _find(rows, operation, name)
            ratio = None if row is None else _ratio(row)
            if ratio is None:
                checks.append(
                    Check(f"{operation} ({name}): imgmirror/skopeo <= {limit}", None, "not run")
                )
                continue
            checks.append(
                Check(
                    f"{operation} ({name}): imgmirror/skopeo <= {limit}",
                    ratio <= limit,
                    f"{ratio:.2f}",
                )
            )
    throttled = _find(rows, "throttled save", main)
    if throttled is not None:
        over = throttled.facts["save_to_copy"]
        checks.append(
            Check(
                f"save ({main}) over a per-connection limited link: within 1.2x of copy",
                over <= 1.2,
                f"{throttled.imgmirror.median:.2f} s vs {throttled.facts['copy_seconds']:.2f} s "
                f"({over:.2f}x)",
            )
        )
    measured = [row for row in rows if row.imgmirror]
    worst = max(measured, key=lambda r: r.imgmirror.peak_rss_mib)
    checks.append(
        Check(
            f"peak RSS under {RSS_LIMIT_MIB:.0f} MB for every command",
            worst.imgmirror.peak_rss_mib < RSS_LIMIT_MIB,
            f"max {worst.imgmirror.peak_rss_mib:.0f} MiB ({worst.operation}, {worst.image.name})",
        )
    )
    growth: list[str] = []
    same = True
    for operation in dict.fromkeys(row.operation for row in measured):
        large, tiny = _find(rows, operation, big), _find(rows, operation, small)
        if large is None or tiny is None or not large.imgmirror or not tiny.imgmirror:
            continue
        delta = large.imgmirror.peak_rss_mib - tiny.imgmirror.peak_rss_mib
        same = same and delta <= RSS_GROWTH_MIB
        growth.append(f"{operation} {delta:+.0f}")
    checks.append(
        Check(
            f"RSS with a 1 GiB layer = with a 1 MiB layer (within {RSS_GROWTH_MIB:.0f} MiB)",
            same if growth else None,
            ", ".join(growth) + " MiB" if growth else "not run",
        )
    )
    return checks


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _cell(value: float | None, unit: str = "s") -> str:
    return "—" if value is None else f"{value:.2f} {unit}" if unit == "s" else f"{value:.0f} {unit}"


def summary_line(row: Row) -> str:
    """One progress line for the console while the benchmark runs."""
    if row.skipped:
        return f"{row.operation:22} {row.image.name:14} {row.skipped}"
    parts = [f"imgmirror {row.imgmirror.median:6.2f} s ({row.imgmirror.peak_rss_mib:3.0f} MiB)"]
    if row.skopeo:
        parts.append(f"skopeo {row.skopeo.median:6.2f} s ({row.skopeo.peak_rss_mib:3.0f} MiB)")
        parts.append(f"ratio {row.imgmirror.median / row.skopeo.median:4.2f}")
    if row.curl:
        parts.append(f"curl {row.curl.median:5.2f} s")
    return f"{row.operation:22} {row.image.name:14} " + "  ".join(parts)


def _table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| operation | image | imgmirror | skopeo | imgmirror/skopeo | curl \\| curl "
        "| imgmirror peak RSS | skopeo peak RSS | runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row.skipped:
            lines.append(f"| {row.operation} | {row.image.name} | {row.skipped} | | | | | | |")
            continue
        ratio = _ratio(row)
        lines.append(
            f"| {row.operation} | {row.image.name} | {_cell(row.imgmirror.median)} "
            f"| {_cell(row.skopeo.median if row.skopeo else None)} "
            f"| {'—' if ratio is None else f'{ratio:.2f}'} "
            f"| {_cell(row.curl.median if row.curl else None)} "
            f"| {_cell(row.imgmirror.peak_rss_mib, 'MiB')} "
            f"| {_cell(row.skopeo.peak_rss_mib if row.skopeo else None, 'MiB')} "
            f"| {len(row.imgmirror.runs)} |"
        )
    return lines


def render(
    rows: Sequence[Row],
    checks: Sequence[Check],
    *,
    facts: dict[str, str],
    images: str,
    method: str,
    bounds: str,
    startup: str = "",
) -> str:
    """The whole markdown document."""
    mark = {True: "met", False: "**missed**", None: "not measured"}
    out = [
        "# Benchmarks",
        "",
        "Generated by `nox -s bench` (`python -m benchmarks.run`); the numbers are from one run.",
        "",
        *[f"- **{key}**: {value}" for key, value in facts.items()],
        "",
        "## Images",
        "",
        images,
        "",
        "## Results",
        "",
        "Median wall time per command (process start-up included), peak RSS over all runs.",
        "",
        *_table(rows),
        "",
        *[f"- {row.operation} ({row.image.name}): {note}" for row in rows for note in row.notes],
        "",
        "## Targets",
        "",
        "| target | measured | outcome |",
        "| --- | --- | --- |",
        *[f"| {_escape(c.target)} | {_escape(c.measured)} | {mark[c.met]} |" for c in checks],
        "",
        *(["## Start-up", "", startup, ""] if startup else []),
        "## Method",
        "",
        method,
        "",
        "## What bounds the results",
        "",
        bounds,
        "",
    ]
    return "\n".join(out)


def write(path: Path, text: str) -> None:
    """Write the document (creating ``docs/`` if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)

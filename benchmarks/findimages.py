"""find-images over real published manifests: recall of direct and indirect images, false
positives, against a naive ``grep image:``; and the time it takes.

The manifests are verbatim copies under ``benchmarks/data/findimages/`` (each file's
repository, path, commit and licence, and how the expected lists were made, are in its
``expected.yaml``). ``python -m benchmarks.findimages`` prints the table and writes it into
docs/find-images.md between its markers (``--no-write``: print only). The issue's bar: every
direct image, at least 90% of the indirect ones, no false positive.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import yaml

from imgmirror.findimages.scan import scan

from .syncbench import publish

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "findimages"
DOC = ROOT / "docs" / "find-images.md"
START, END = "<!-- findimages-bench: start -->", "<!-- findimages-bench: end -->"
_GREP = re.compile(r"image:\s*(.*)$")


def naive_grep(text: str) -> set[str]:
    """What ``grep image:`` and a cut after it would list (comments and anchors included)."""
    found = set()
    for line in text.splitlines():
        match = _GREP.search(line)
        if match:
            value = match[1].strip().strip("'\"")
            if value and not value.startswith(("{", "|", ">")):
                found.add(value.split(" #")[0].strip())
    return found


def _count(found: set[str], direct: set[str], indirect: set[str]) -> tuple[int, int, int]:
    return len(found & direct), len(found & indirect), len(found - direct - indirect)


def _row(name: str, numbers: tuple[int, ...]) -> str:
    return "| " + " | ".join([name, *(str(n) for n in numbers)]) + " |"


def measure() -> tuple[list[str], dict[str, int], float]:
    expected = yaml.safe_load((DATA / "expected.yaml").read_text())["files"]
    rows, totals = [], dict.fromkeys(("direct", "indirect", "d", "i", "fp", "gd", "gi", "gfp"), 0)
    seconds = 0.0
    for name, facts in expected.items():
        direct, indirect = set(facts["direct"]), set(facts["indirect"]) - set(facts["direct"])
        path = DATA / name
        started = time.perf_counter()
        report = scan([path])
        seconds += time.perf_counter() - started
        ours = _count({i.image for i in report.images}, direct, indirect)
        grep = _count(naive_grep(path.read_text()), direct, indirect)
        rows.append(_row(name, (len(direct), len(indirect), *ours, *grep)))
        for key, value in zip(totals, (len(direct), len(indirect), *ours, *grep), strict=True):
            totals[key] += value
    return rows, totals, seconds


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def section(rows: list[str], totals: dict[str, int], seconds: float) -> str:
    t = totals
    verdict = (
        "met"
        if (t["d"] == t["direct"] and t["i"] >= 0.9 * t["indirect"] and t["fp"] == 0)
        else "NOT met"
    )
    lines = [
        START,
        "| manifest | direct | indirect | found direct | found indirect | false positives "
        "| grep direct | grep indirect | grep false positives |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        _row("**all**", tuple(t.values())),
        "",
        f"find-images: direct {_pct(t['d'], t['direct'])}, indirect {_pct(t['i'], t['indirect'])}, "
        f"{t['fp']} false positives ({verdict}: every direct image, >= 90% indirect, none "
        f"false); `grep image:`: direct {_pct(t['gd'], t['direct'])}, indirect "
        f"{_pct(t['gi'], t['indirect'])}, {t['gfp']} false positives. "
        f"{sum(1 for _ in DATA.glob('*/*.yaml'))} files, "
        f"{sum(p.stat().st_size for p in DATA.glob('*/*.yaml')) / 1e6:.1f} MB read in "
        f"{seconds:.1f} s.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.findimages", description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="print; leave the docs alone")
    args = parser.parse_args(argv)
    rows, totals, seconds = measure()
    publish(section(rows, totals, seconds), DOC, write=not args.no_write)
    met = totals["d"] == totals["direct"] and totals["fp"] == 0
    return 0 if met and totals["i"] >= 0.9 * totals["indirect"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Start-up cost: ``imgmirror --version`` and a first touch of ``imgmirror.copy``.

Median wall time of repeated runs against bare Python, and the largest imports by cumulative
time from ``python -X importtime``. ``python -m benchmarks.startup`` prints the section;
``nox -s bench`` puts it in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["CASES", "section"]

PY = sys.executable
CASES: dict[str, list[str]] = {
    "python -c pass (the floor)": [PY, "-c", "pass"],
    # what the console script runs (main() reads sys.argv[1:]: ["--version"])
    "imgmirror --version": [
        PY,
        "-c",
        "import re; from imgmirror.cli import main; main()",
        "--version",
    ],
    "import imgmirror; imgmirror.copy": [PY, "-c", "import imgmirror; imgmirror.copy"],
}
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: Sequence[str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``runs`` runs."""
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), _cpu()
        subprocess.run(argv, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def top_imports(argv: Sequence[str], count: int = 6) -> list[tuple[str, float]]:
    """The top-level imports with the largest cumulative time (ms), from -X importtime."""
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], check=True, capture_output=True, text=True
    )
    tops = []
    for line in proc.stderr.splitlines():
        match = _LINE.match(line)
        if match and len(match.group(3)) == 1:  # one space: imported directly, not nested
            tops.append((match.group(4), int(match.group(2)) / 1000))
    return sorted(tops, key=lambda item: -item[1])[:count]


def section(runs: int = 15) -> str:
    """The markdown of the start-up section."""
    lines = [
        f"Median of {runs} runs each (bytecode cached), load average "
        f"{os.getloadavg()[0]:.2f} when measured (on a busy machine CPU time is the steadier "
        "figure). Target: `imgmirror --version` <= 0.06 s.",
        "",
        "| command | wall | CPU | largest imports (cumulative ms, `-X importtime`) |",
        "| --- | --- | --- | --- |",
    ]
    for name, argv in CASES.items():
        _timed(argv, 1)  # warm the caches
        wall, cpu = _timed(argv, runs)
        tops = ", ".join(f"{mod} {ms:.0f}" for mod, ms in top_imports(argv))
        lines.append(f"| `{name}` | {wall:.3f} s | {cpu:.3f} s | {tops} |")
    lines += [
        "",
        "`--version` is answered by `imgmirror.cli.main` before typer, rich or attrs load, and "
        "`import imgmirror` loads each public name on first use. httpx imports its own command "
        "line (click, rich, pygments: about 0.1 s) whenever they are installed, as typer "
        "ensures; imgmirror keeps that module unloaded, so touching `imgmirror.copy` pays for "
        "httpx's client only.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(section())

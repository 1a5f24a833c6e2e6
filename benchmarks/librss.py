"""Memory of a long-lived library user: RSS across 40 one-shot ``imgmirror.copy`` calls.

``python -m benchmarks.librss`` starts a source and a destination registry on loopback, seeds
a small image (the pause image's shape: a config and one layer) and, in a fresh interpreter,
calls :func:`imgmirror.copy` 40 times over TLS (each call builds and closes its own session, TLS
contexts and connection pools, as provisioning code calling the shortcut in a loop does) into
a new repository each time, with the garbage collector left as Python configures it. It reads
the process's resident set size (``VmRSS``) after copies 1, 10, 20, 30 and 40 and writes the
section between the ``library-rss`` markers of docs/benchmarks.md. Flat means that what one
copy allocates is freed when it ends, not at the next full collection.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.support.certs import make_pki
from tests.support.images import make_image
from tests.support.registry import RegistryFactory
from tests.support.seed import seed

from .measure import user_env
from .syncbench import publish

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- library-rss -->", "<!-- /library-rss -->"
MARKS = (1, 10, 20, 30, 40)

DRIVER = """
import json, sys
import imgmirror
from imgmirror.transport.options import ClientOptions

def rss_kib():
    with open("/proc/self/status") as status:
        return int(next(l for l in status if l.startswith("VmRSS:")).split()[1])

source, dest, ca = sys.argv[1], sys.argv[2], sys.argv[4]
marks = [int(m) for m in sys.argv[3].split(",")]
seen = {}
for n in range(1, max(marks) + 1):
    imgmirror.copy(source, f"{dest}/rss{n}:1.0", options=ClientOptions(ca_file=ca))
    if n in marks:
        seen[n] = rss_kib()
print(json.dumps(seen))
"""


def measure(source: str, dest: str, ca: Path) -> dict[int, int]:
    """VmRSS in KiB after each of :data:`MARKS` copies, in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, source, dest, ",".join(map(str, MARKS)), str(ca)],
        capture_output=True, text=True, check=True, timeout=600, env=user_env(),
    )  # fmt: skip
    return {int(k): v for k, v in json.loads(proc.stdout).items()}


def render(seen: dict[int, int]) -> str:
    """The section for docs/benchmarks.md."""
    growth = (seen[MARKS[-1]] - seen[MARKS[1]]) / 1024
    lines = [
        START,
        "## Memory of a long-lived library user",
        "",
        f"`python -m benchmarks.librss` ({time.strftime('%Y-%m-%d %H:%M UTC')}): one process "
        f"calls `imgmirror.copy` {MARKS[-1]} times (a config and one layer, TLS registries "
        "on loopback with a CA file; each call opens and closes its own session and TLS "
        "contexts), the garbage collector as Python configures it. Resident set size after "
        "copy n:",
        "",
        "| copies | " + " | ".join(str(m) for m in MARKS) + " |",
        "|---|" + "---|" * len(MARKS),
        "| RSS | " + " | ".join(f"{seen[m] / 1024:.1f} MiB" for m in MARKS) + " |",
        "",
        f"From copy {MARKS[1]} to copy {MARKS[-1]}: {growth:+.1f} MiB "
        f"(target: flat; {'met' if abs(growth) <= 2 else 'missed'}, within 2 MiB).",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure and write the section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.librss", description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    run_dir = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / (
        f"imgmirror-librss-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    factory = RegistryFactory(run_dir, make_pki(run_dir / "pki"))
    try:
        source = factory(name="source", tls=True, log_level="error")
        dest = factory(name="destination", tls=True, log_level="error")
        seed(source, "rss/app", "1.0", make_image(marker="librss"))
        assert dest.cert_dir is not None
        seen = measure(f"{source.host}/rss/app:1.0", f"{dest.host}/copies",
                       dest.cert_dir / "ca.crt")  # fmt: skip
    finally:
        factory.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
    publish(render(seen), args.output, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())

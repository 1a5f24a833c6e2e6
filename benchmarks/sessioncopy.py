"""Copy N images through one :class:`imgmirror.Session`, from threads: the library scenario.

``python -m benchmarks.sessioncopy SRC_HOST DEST_PREFIX COUNT [--ca-file CA] [--jobs J]``
copies ``SRC_HOST/sync/app{i}:1.0`` to ``DEST_PREFIX/sync/app{i}:1.0`` for i < COUNT with
``jobs`` copies in flight, all sharing one session: its connections, tokens, ``/v2/`` checks
and blob engine (so a base layer the images share is uploaded once and mounted elsewhere).
Run by :mod:`benchmarks.synclatency` inside the latency lab; prints one JSON line of totals.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Copy the images; exit 1 if any copy failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sessioncopy", description=__doc__)
    parser.add_argument("source_host")
    parser.add_argument("dest_prefix")
    parser.add_argument("count", type=int)
    parser.add_argument("--ca-file")
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args(argv)

    import imgmirror  # noqa: PLC0415 - timed from the first import
    from imgmirror.transport.options import ClientOptions  # noqa: PLC0415

    options = ClientOptions(ca_file=args.ca_file)
    with (
        imgmirror.Session(options, jobs=args.jobs) as session,
        ThreadPoolExecutor(args.jobs) as pool,
    ):

        def one(i: int) -> int:
            result = session.copy(
                f"{args.source_host}/sync/app{i}:1.0", f"{args.dest_prefix}/sync/app{i}:1.0"
            )
            return result.bytes_copied

        copied = sum(pool.map(one, range(args.count)))
    print(json.dumps({"images": args.count, "bytes_copied": copied}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``imgmirror`` command line: parse options, call the library, print the outcome.

No protocol logic lives here. :mod:`.common` holds the app and what the commands share;
:mod:`.transfer` has ``copy``, ``save`` and ``push``; :mod:`.secret` the pull-Secret tools;
:mod:`.nodes` ``node-config``; :mod:`.lookup` ``ls``, ``digest``, ``inspect``, ``catalog``;
:mod:`.sync` the ``sync`` command.
"""

from __future__ import annotations

from . import lookup, nodes, secret, sync, transfer
from .common import app

__all__ = ["app", "lookup", "main", "nodes", "secret", "sync", "transfer"]


def main() -> None:
    """Console-script entry point."""
    app()

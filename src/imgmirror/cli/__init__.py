"""The ``imgmirror`` command line: parse options, call the library, print the outcome.

No protocol logic lives here. :mod:`.common` holds the app and what the commands share;
:mod:`.transfer` has ``copy``, ``save`` and ``push``; :mod:`.secret` the pull-Secret tools;
:mod:`.nodes` ``node-config``; :mod:`.lookup` ``ls``, ``digest``, ``inspect``, ``catalog``;
:mod:`.sync` the ``sync`` command;
:mod:`.referrers` the referrers listing.
"""

from __future__ import annotations

import sys

from . import lookup, nodes, referrer_options, secret, sync, transfer
from . import referrers as referrers  # registered after the transfer commands
from .common import app

__all__ = ["app", "lookup", "main", "nodes", "referrers", "secret", "sync", "transfer"]


def main() -> None:
    """Console-script entry point."""
    app(args=referrer_options.bare_referrers(sys.argv[1:]))

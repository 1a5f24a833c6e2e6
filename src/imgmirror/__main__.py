"""``python -m imgmirror``: the same as the ``imgmirror`` command."""

from .cli import run

run()

"""``python -m imgmirror.cli``: the same as the ``imgmirror`` command."""

from . import run

run()

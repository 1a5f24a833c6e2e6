"""``python -m imgmirror.cli``: the same as the ``imgmirror`` command."""

from imgmirror.cli import run

run()

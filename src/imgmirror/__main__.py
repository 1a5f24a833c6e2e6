"""``python -m imgmirror``: the same as the ``imgmirror`` command."""

import sys

try:
    from imgmirror.cli import run
except KeyboardInterrupt:  # Ctrl-C while the interpreter starts: one line, no traceback
    sys.stderr.write("imgmirror: interrupted\n")
    sys.exit(130)

run()

"""Mirroring by a sync file: its parsing, which tags an entry selects (regex, semver, newest),
shards, the run over the copy operation, and its report.

The package is not named ``sync`` because :func:`imgmirror.sync` is a public function: a
subpackage of that name would replace it as an attribute of :mod:`imgmirror` once imported.

May import: :mod:`imgmirror.ops` and everything below it.
"""

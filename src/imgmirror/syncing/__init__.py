"""Mirroring by a sync file: its parsing, which tags an entry selects (regex, semver, newest),
shards, the run over the copy operation, and its report.

The package is not named ``sync`` because [imgmirror.sync][imgmirror.sync] is a public function: a
subpackage of that name would replace it as an attribute of [imgmirror][imgmirror] once imported.

May import: [imgmirror.ops][imgmirror.ops] and everything below it.
"""

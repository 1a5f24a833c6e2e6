"""Working with registries over the transport: the client pool a session shares, the one blob
engine (HEAD, mount, upload, resume), image-tree fetching, and bounded parallel execution.

May import: :mod:`imgmirror.transport`, :mod:`imgmirror.auth`, :mod:`imgmirror.progress`,
:mod:`imgmirror.model`, :mod:`imgmirror.errors`. Never :mod:`imgmirror.archive` (a sibling).
"""

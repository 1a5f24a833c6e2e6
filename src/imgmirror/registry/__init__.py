"""Working with registries over the transport: the client pool a session shares, the one blob
engine (HEAD, mount, upload, resume), image-tree fetching, and bounded parallel execution.

May import: [imgmirror.transport][imgmirror.transport], [imgmirror.auth][imgmirror.auth],
[imgmirror.progress][imgmirror.progress],
[imgmirror.model][imgmirror.model], [imgmirror.errors][imgmirror.errors]. Never
[imgmirror.archive][imgmirror.archive] (a sibling).
"""

"""Image archives (tarballs and directories): reading what ``docker save``, skopeo, crane and
containerd write, and writing archives that ``docker load`` and ``ctr images import`` take.

Import from the submodules: [.reader][imgmirror.archive.reader] (safe, streaming tar access) and
[.contents][imgmirror.archive.contents]
(what images an archive holds) for push; the layout and writer modules for save.

May import: [imgmirror.progress][imgmirror.progress], [imgmirror.model][imgmirror.model],
[imgmirror.errors][imgmirror.errors]. No HTTP
here, and nothing of [imgmirror.registry][imgmirror.registry] (a sibling): save hands the writer a
function
that opens a blob.
"""

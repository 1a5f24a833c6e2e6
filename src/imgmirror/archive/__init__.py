"""Image archives (tarballs and directories): reading what ``docker save``, skopeo, crane and
containerd write, and writing archives that ``docker load`` and ``ctr images import`` take.

Import from the submodules: :mod:`.reader` (safe, streaming tar access) and :mod:`.contents`
(what images an archive holds) for push; the layout and writer modules for save.

May import: :mod:`imgmirror.progress`, :mod:`imgmirror.model`, :mod:`imgmirror.errors`. No HTTP
here, and nothing of :mod:`imgmirror.registry` (a sibling): save hands the writer a function
that opens a blob.
"""

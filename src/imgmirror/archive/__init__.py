"""Image archives (tarballs): reading what ``docker save``, skopeo, crane and containerd write,
and writing docker-loadable archives. No HTTP here.

Import from the submodules: :mod:`.reader` (safe, streaming tar access) and :mod:`.contents`
(what images an archive holds) for push; the layout and writer modules for save.
"""

"""Which images a cluster needs: rendered manifests, kustomizations, Helm charts, kubeadm's
list and a live cluster read into :class:`~imgmirror.findimages.found.FoundImage` values, and
written as an image list, a sync file (merged, comments kept) or a lock.

Pure modules: :mod:`.found` (the values), :mod:`.judge` (is this text an image?),
:mod:`.documents` (YAML/JSON text into documents with line numbers), :mod:`.extract`
(documents into candidates), :mod:`.helmvalues` (a chart's ``values.yaml``), :mod:`.lock`
(the lock format, and pinning a sync file to it), :mod:`.syncfile` (merging into a sync file).
I/O: :mod:`.inputs` (files, directories, ``kubectl kustomize``, ``helm template``),
:mod:`.cluster` (the Kubernetes API through :mod:`imgmirror.transport.kubeapi`),
:mod:`.resolve` (one ``HEAD`` per tag for the lock), :mod:`.scan` (everything together).

May import: :mod:`imgmirror.syncing`, :mod:`imgmirror.nodes` and everything below them.
"""

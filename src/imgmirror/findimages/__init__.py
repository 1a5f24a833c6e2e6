"""Which images a cluster needs: rendered manifests, kustomizations, Helm charts, kubeadm's
list and a live cluster read into [FoundImage][imgmirror.findimages.found.FoundImage] values, and
written as an image list, a sync file (merged, comments kept) or a lock.

Pure modules: [.found][imgmirror.findimages.found] (the values),
[.judge][imgmirror.findimages.judge] (is this text an image?),
[.documents][imgmirror.findimages.documents] (YAML/JSON text into documents with line numbers),
[.extract][imgmirror.findimages.extract]
(documents into candidates), [.helmvalues][imgmirror.findimages.helmvalues] (a chart's
``values.yaml``), [.lock][imgmirror.findimages.lock]
(the lock format, and pinning a sync file to it), [.syncfile][imgmirror.findimages.syncfile]
(merging into a sync file).
I/O: [.inputs][imgmirror.findimages.inputs] (files, directories, ``kubectl kustomize``, ``helm
template``),
[.cluster][imgmirror.findimages.cluster] (the Kubernetes API through
[imgmirror.transport.kubeapi][imgmirror.transport.kubeapi]),
[.resolve][imgmirror.findimages.resolve] (one ``HEAD`` per tag for the lock),
[.scan][imgmirror.findimages.scan] (everything together).

May import: [imgmirror.syncing][imgmirror.syncing], [imgmirror.nodes][imgmirror.nodes] and
everything below them.
"""

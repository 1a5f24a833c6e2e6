"""What a Kubernetes node needs to pull through a mirror: containerd, CRI-O/podman and Docker
configuration built as values, and written atomically.

May import: [imgmirror.ops][imgmirror.ops] and everything below it.
"""

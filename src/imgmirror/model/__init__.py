"""Pure values of the registry world, with no I/O: digests, references and the naming rule,
media types, platforms, manifests and image trees, compression, artifact filters and referrer
values.

May import: [imgmirror.errors][imgmirror.errors] and the standard library (plus attrs, zstandard).
Nothing
here opens a socket, a file or a process.
"""

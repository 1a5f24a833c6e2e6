"""Benchmarks of imgmirror against skopeo and a raw curl stream (``nox -s bench``)."""

"""The operations: copy, save, push, inspect and the look-ups. Each takes a client pool from
[imgmirror.registry][imgmirror.registry]; none builds a [Session][imgmirror.session.Session].

May import: [imgmirror.referrers][imgmirror.referrers], [imgmirror.registry][imgmirror.registry],
[imgmirror.archive][imgmirror.archive]
and everything below them.
"""

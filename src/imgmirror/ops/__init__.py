"""The operations: copy, save, push, inspect and the look-ups. Each takes a client pool from
:mod:`imgmirror.registry`; none builds a :class:`~imgmirror.session.Session`.

May import: :mod:`imgmirror.referrers`, :mod:`imgmirror.registry`, :mod:`imgmirror.archive`
and everything below them.
"""

"""The one-shot calls: each opens a client pool with the call's settings, runs one operation
and closes the pool (as httpx's ``httpx.get`` over ``httpx.Client``).

Each one-shot sits in the module of its operation, so ``imgmirror.copy`` loads what a copy
needs and nothing else (the package re-exports nothing: ``imgmirror.copy`` is the public
name). Every call takes the connection settings the command line has (``timeout``,
``ca_file``, ``certs_dirs``, ``insecure_registries``, or a whole ``options`` value) and where
credentials come from (``authfile``, ``keychain``). Several calls in a row are cheaper through
one [Session][imgmirror.session.Session]: it shares connections, tokens and the ``/v2/``
checks.

May import: everything below it; never [imgmirror.cli][imgmirror.cli].
"""

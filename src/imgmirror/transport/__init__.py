"""The HTTP edge: the only package that imports httpx.

``client`` (the distribution API for one registry), ``auth`` (challenges and tokens),
``retry`` (backoff policy) and ``tls`` (CAs, client certificates, insecure hosts). Nothing is
imported here, so light users such as the CLI's option parsing do not pay for httpx.

May import: [imgmirror.auth][imgmirror.auth], [imgmirror.model][imgmirror.model],
[imgmirror.errors][imgmirror.errors].
"""

import sys

# httpx imports its own command line (click, rich and pygments, about 0.1 s) whenever those are
# installed, and typer brings them. imgmirror never runs it: keep it unloaded (httpx then
# defines a stub ``httpx.main``). Only when httpx is not loaded yet, so no one else is affected.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

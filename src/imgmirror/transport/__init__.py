"""The HTTP edge: the only package that imports httpx.

``client`` (the distribution API for one registry), ``auth`` (challenges and tokens),
``retry`` (backoff policy) and ``tls`` (CAs, client certificates, insecure hosts). Nothing is
imported here, so light users such as the CLI's option parsing do not pay for httpx.
"""

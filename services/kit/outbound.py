"""What every outbound HTTP client of a process shares.

Building a TLS context loads the CA bundle (about 40 ms each); the API made two per start
and tests start an app per test, so the process builds it once and every client uses it.
"""

import ssl
from functools import cache

import certifi


@cache
def tls_context() -> ssl.SSLContext:
    """Verifying TLS against certifi's CA bundle, as httpx does by default."""
    return ssl.create_default_context(cafile=certifi.where())

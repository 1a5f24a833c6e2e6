"""The HTTP edge: the only package that imports httpx."""

from .client import Mount, RegistryClient, api_host
from .retry import RetryPolicy
from .tls import ClientOptions

__all__ = ["ClientOptions", "Mount", "RegistryClient", "RetryPolicy", "api_host"]

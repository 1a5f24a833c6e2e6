"""Check credentials against a registry the way a pull would, without pulling anything."""

from __future__ import annotations

from imgmirror.auth.credentials import Credential
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.options import ClientOptions

__all__ = ["try_credentials"]


def try_credentials(
    registry: str,
    credential: Credential | None,
    *,
    repository: str | None = None,
    options: ClientOptions | None = None,
) -> None:
    """Log in to ``registry`` the way a pull would: ``/v2/`` with a token for a pull scope.

    With ``repository``, also list its tags, which needs pull access (a repository that does
    not exist yet still counts as success).

    Raises:
        AuthenticationError: The registry or its token service refused the credentials.
        PermissionDenied: The credentials work but may not pull ``repository``.
        NetworkError: The registry cannot be reached (TLS errors name their fix).
    """
    scopes = [f"repository:{repository}:pull"] if repository else []
    with RegistryClient(registry, credential=credential, options=options) as client:
        urls = [f"{client.base_url}/v2/"]
        if repository:
            urls.append(f"{client.base_url}/v2/{repository}/tags/list?n=1")
        for url in urls:
            response = client.request("GET", url, scopes=scopes)
            if response.status_code == 404 and url != urls[0]:
                response.close()
                continue
            if response.status_code != 200:
                raise client.fail(response, "GET", url)
            response.close()

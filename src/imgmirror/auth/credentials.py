"""Registry credentials as a value: [Credential][], parsed from ``USER:PASSWORD`` strings.

A credential's ``repr`` and ``str`` never show the password or tokens, and parse errors never
echo them. This module does no I/O.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from imgmirror.errors import CredentialsError

__all__ = ["Credential", "CredentialInput"]


def _parse_error(message: str, setting: str | None) -> CredentialsError:
    """A credentials string that does not parse; the hint names the parameter it came in."""
    what = setting or "the credentials"
    return CredentialsError(message, hint=f"give {what} as USER:PASSWORD", setting=setting)


@attrs.frozen(repr=False)
class Credential:
    """A username and password, plus optional tokens from a docker ``config.json``.

    Attributes:
        username: The user name (may be empty when only tokens are set).
        password: The password or personal access token.
        identity_token: An OAuth2 refresh token (``identitytoken``), exchanged by POST.
        registry_token: A ready-made bearer token (``registrytoken``), used as-is.
    """

    username: str
    password: str = attrs.field(repr=False)
    identity_token: str | None = attrs.field(default=None, repr=False)
    registry_token: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, value: str, *, setting: str | None = None) -> Credential:
        """Parse ``"USER:PASSWORD"``, splitting at the first colon.

        Args:
            value: the string.
            setting: the parameter it was given in (``"src_creds"``), named in errors.

        Raises:
            CredentialsError: If there is no colon, or the user or password is empty. The
                message never contains the password.
        """
        username, sep, password = value.partition(":")
        if not sep:
            raise _parse_error("credentials must be USER:PASSWORD, but there is no ':'", setting)
        if not username:
            raise _parse_error("credentials have an empty user name", setting)
        if not password:
            raise _parse_error(f"credentials for user {username!r} have an empty password", setting)
        return cls(username, password)

    @classmethod
    def coerce(cls, value: CredentialInput, *, setting: str | None = None) -> Credential | None:
        """Accept what public APIs accept: ``"user:pass"``, ``(user, pass)``, a Credential or None.

        ``setting`` is the parameter ``value`` came in (``"dest_creds"``), named in errors.

        Raises:
            CredentialsError: If a string does not parse (see `parse`).
            TypeError: If ``value`` is of another type.
        """
        if value is None or isinstance(value, Credential):
            return value
        if isinstance(value, str):
            return cls.parse(value, setting=setting)
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return cls(value[0], value[1])
        raise TypeError(
            f"{setting or 'credentials'} must be 'USER:PASSWORD', a (user, password) tuple or "
            f"a Credential, not {type(value).__name__}"
        )

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r})"

    __str__ = __repr__


#: What public functions accept wherever credentials can be given.
CredentialInput: TypeAlias = str | tuple[str, str] | Credential | None

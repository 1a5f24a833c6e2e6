"""A small Kubernetes API client: a kubeconfig's server, CA and credentials, and paginated
lists.

[load_kubeconfig][] reads ``--kubeconfig``, else ``$KUBECONFIG`` (several files joined
by ``:``, the first to define a name wins, as kubectl merges them), else
``~/.kube/config``, and picks ``--context`` or ``current-context``. Supported: ``server``,
``certificate-authority`` and ``-data``, ``insecure-skip-tls-verify``, ``tls-server-name``,
``client-certificate``/``client-key`` and their ``-data``, ``token``, ``tokenFile``,
``username``/``password``; relative paths are taken from the kubeconfig's folder. Not
supported, and said so plainly: ``exec`` credential plugins and ``auth-provider`` (cloud
logins: use a token, or pipe ``kubectl get … -o json`` into find-images) and ``proxy-url``
(no proxy is used, whatever the environment says).

[KubeClient][] lists a collection page by page (``limit``, then ``continue`` until the
server returns none), every page bounded in size and the number of pages bounded. Tokens,
passwords and keys never appear in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import yaml

from imgmirror.errors import KubernetesError

__all__ = ["KubeClient", "KubeTarget", "load_kubeconfig"]

_log = logging.getLogger(__name__)
_MAX_PAGE = 64 * 1024 * 1024
_MAX_PAGES = 10_000
_MAX_KUBECONFIG = 4 * 1024 * 1024
_PIPE_HINT = (
    "or run kubectl get pods,deploy,ds,sts,rs,rc,job,cronjob -A -o json | imgmirror find-images -"
)


@attrs.frozen
class KubeTarget:
    """Where and as whom to talk to the API server (secrets kept out of ``repr``)."""

    server: str
    context: str
    user: str
    namespace: str | None = None
    ca_pem: bytes | None = attrs.field(default=None, repr=False)
    insecure: bool = False
    tls_server_name: str | None = None
    token: str | None = attrs.field(default=None, repr=False)
    basic: tuple[str, str] | None = attrs.field(default=None, repr=False)
    cert_pem: bytes | None = attrs.field(default=None, repr=False)
    key_pem: bytes | None = attrs.field(default=None, repr=False)


def _files(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> list[Path]:
    if path is not None:
        return [Path(path)]
    if env.get("KUBECONFIG"):
        return [Path(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [Path(env.get("HOME", str(Path.home()))) / ".kube" / "config"]


def _read_config(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            raw = handle.read(_MAX_KUBECONFIG + 1)
        data = yaml.safe_load(raw) if len(raw) <= _MAX_KUBECONFIG else None
    except OSError as exc:
        raise KubernetesError(f"cannot read kubeconfig {file}: {exc.strerror or exc}",
                              hint="check the kubeconfig path") from None  # fmt: skip
    except yaml.YAMLError as exc:
        raise KubernetesError(f"kubeconfig {file} is not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise KubernetesError(f"kubeconfig {file} is not a kubeconfig (not a mapping)")
    return data


def _named(
    configs: list[tuple[Path, dict[str, Any]]], section: str, key: str, name: str
) -> tuple[Path, dict[str, Any]]:
    for file, config in configs:
        for item in config.get(section) or ():
            if (
                isinstance(item, dict)
                and item.get("name") == name
                and isinstance(item.get(key), dict)
            ):
                return file, item[key]
    raise KubernetesError(f"the kubeconfig has no {key} named {name!r}",
                          hint="check the names under contexts:, clusters: and users:")  # fmt: skip


def _data(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    inline = entry.get(f"{key}-data")
    if isinstance(inline, str) and inline:
        try:
            return base64.b64decode(inline, validate=True)
        except ValueError:
            raise KubernetesError(f"the kubeconfig's {key}-data is not base64") from None
    path = entry.get(key)
    if isinstance(path, str) and path:
        full = Path(path) if Path(path).is_absolute() else base / path
        try:
            return full.read_bytes()
        except OSError as exc:
            raise KubernetesError(
                f"cannot read the kubeconfig's {key} {full}: {exc.strerror}"
            ) from None
    return None


def _user(name: str, user: dict[str, Any], base: Path) -> dict[str, Any]:
    if "exec" in user or "auth-provider" in user:
        what = "an exec credential plugin" if "exec" in user else "an auth-provider"
        raise KubernetesError(
            f"the kubeconfig user {name!r} logs in through {what}, which imgmirror does not run",
            hint=f"use a kubeconfig with a token (kubectl create token NAME), {_PIPE_HINT}",
        )
    token = user.get("token") if isinstance(user.get("token"), str) else None
    if token is None and isinstance(user.get("tokenFile"), str):
        file = Path(user["tokenFile"])
        try:
            token = (file if file.is_absolute() else base / file).read_text().strip()
        except OSError as exc:
            raise KubernetesError(
                f"cannot read the kubeconfig's tokenFile: {exc.strerror}"
            ) from None
    basic = None
    if isinstance(user.get("username"), str) and isinstance(user.get("password"), str):
        basic = (user["username"], user["password"])
    return {
        "token": token or None,
        "basic": basic,
        "cert_pem": _data(user, "client-certificate", base),
        "key_pem": _data(user, "client-key", base),
    }


def load_kubeconfig(
    path: str | os.PathLike[str] | None = None,
    context: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> KubeTarget:
    """The API server, CA and credentials of ``context`` (default: ``current-context``).

    Raises:
        KubernetesError: no kubeconfig, no such context, or credentials imgmirror cannot use.
    """
    environment = os.environ if env is None else env
    files = [f for f in _files(path, environment) if path is not None or f.exists()]
    if not files:
        raise KubernetesError(
            "no kubeconfig found", hint="give a kubeconfig file, or set KUBECONFIG"
        )
    configs = [(file, _read_config(file)) for file in files]
    chosen = context or next(
        (c["current-context"] for _, c in configs if c.get("current-context")), None
    )
    if not chosen:
        raise KubernetesError("the kubeconfig has no current-context", hint="name a context")
    _, ctx = _named(configs, "contexts", "context", chosen)
    cluster_file, cluster = _named(configs, "clusters", "cluster", str(ctx.get("cluster")))
    user_name = str(ctx.get("user", ""))
    user_file, user = (
        _named(configs, "users", "user", user_name) if user_name else (cluster_file, {})
    )
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise KubernetesError(
            f"the kubeconfig's cluster for context {chosen!r} has no https:// server"
        )
    if cluster.get("proxy-url"):
        _log.warning("kubeconfig proxy-url is not supported; connecting to %s directly", server)
    namespace = ctx.get("namespace")
    return KubeTarget(
        server=server.rstrip("/"),
        context=chosen,
        user=user_name,
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        ca_pem=_data(cluster, "certificate-authority", cluster_file.parent),
        insecure=cluster.get("insecure-skip-tls-verify") is True,
        tls_server_name=cluster.get("tls-server-name") or None,
        **_user(user_name, user, user_file.parent),
    )


def _ssl_context(target: KubeTarget) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if target.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif target.ca_pem is not None:
        context = ssl.create_default_context(cadata=target.ca_pem.decode("ascii", "replace"))
    if target.cert_pem is not None and target.key_pem is not None:
        with tempfile.TemporaryDirectory(prefix="imgmirror-kube-") as folder:  # 0700
            cert, key = Path(folder) / "client.crt", Path(folder) / "client.key"
            for file, data in ((cert, target.cert_pem), (key, target.key_pem)):
                file.touch(mode=0o600)
                file.write_bytes(data)
            try:
                context.load_cert_chain(cert, key)
            except ssl.SSLError as exc:
                raise KubernetesError(
                    f"the kubeconfig's client certificate or key is not usable: {exc.reason}"
                ) from None
    return context


class KubeClient:
    """GET and paginated LIST against one API server. Use as a context manager."""

    def __init__(self, target: KubeTarget, *, timeout: float = 30.0) -> None:
        self.target = target
        headers = {"Accept": "application/json", "User-Agent": "imgmirror-find-images"}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        auth = httpx.BasicAuth(*target.basic) if target.basic and not target.token else None
        verify: ssl.SSLContext | bool = (
            _ssl_context(target) if target.server.startswith("https") else False
        )
        self._http = httpx.Client(
            base_url=target.server,
            headers=headers,
            auth=auth,
            verify=verify,
            timeout=timeout,
            trust_env=False,
            follow_redirects=False,
        )
        self._extensions = (
            {"sni_hostname": target.tls_server_name} if target.tls_server_name else {}
        )

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One JSON object from ``path`` (``/api/v1/namespaces``).

        Raises:
            KubernetesError: no reply, a reply that is not a JSON object or is too large, or
                an error status (``.status``; the server's own message is kept).
        """
        where = f"{self.target.server}{path}"
        try:
            with self._http.stream(
                "GET", path, params=params, extensions=self._extensions
            ) as reply:
                body = bytearray()
                for chunk in reply.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_PAGE:
                        raise KubernetesError(
                            f"GET {where}: the reply is larger than {_MAX_PAGE} bytes"
                        )
                status = reply.status_code
        except httpx.HTTPError as exc:
            problem = f"GET {where}: {type(exc).__name__}: {exc}"
            raise KubernetesError(problem, hint="check the kubeconfig's server and CA") from None
        _log.debug("GET %s -> %d (%d bytes)", where, status, len(body))
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if status >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            text = str(message)[:300] if message else f"HTTP {status}"
            raise KubernetesError(f"GET {path}: {text}", status=status)
        if not isinstance(data, dict):
            raise KubernetesError(f"GET {where}: the reply is not a JSON object", status=status)
        return data

    def list(self, path: str, *, limit: int = 500) -> Iterator[dict[str, Any]]:
        """Every item of the collection at ``path``, page by page (``limit``/``continue``).

        Raises:
            KubernetesError: as `get`; more than 10,000 pages.
        """
        token = ""
        for _ in range(_MAX_PAGES):
            params = {"limit": str(limit)}
            if token:
                params["continue"] = token
            page = self.get(path, params)
            items = page.get("items")
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict):
                    yield item
            metadata = page.get("metadata")
            token = metadata.get("continue", "") if isinstance(metadata, dict) else ""
            if not token:
                return
        raise KubernetesError(f"GET {path}: more than {_MAX_PAGES} pages")

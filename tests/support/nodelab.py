"""A node's world in a network namespace: registries under their real names, and containerd.

:func:`node_lab` (root only) creates a network namespace ``imgm-h19-PID`` joined to this one by
a veth pair (``host_ip`` here, ``ns_ip`` inside, from :data:`SUBNET`), and writes
``/etc/netns/NAME/hosts`` (never this machine's ``/etc/hosts``) so that, for every process
started with ``ip netns exec`` (which bind-mounts that file over ``/etc/hosts``), the names in
:data:`NAMES` resolve to ``ns_ip``. Real distribution registries then listen inside the
namespace under those names, with a test CA whose server certificate carries them:

- ``registry.k8s.io:443``: TLS, anonymous (the source every node wants), its certificate from
  a "public" CA that the namespace's system store trusts (``/etc/netns/NAME/ssl``, bind-mounted
  over ``/etc/ssl``), as a real node trusts the real one;
- ``registry.corp:5000``: TLS with htpasswd (``alice:secret``), the company's mirror, its
  certificate from a corporate CA (``lab.corp_pki``) that nothing trusts until configured;
- ``plain.corp:5002``: plain HTTP, anonymous (a mirror without TLS);
- ``down.corp:5003``: nothing listens (a mirror that is down).

The test process reaches them at ``ns_ip:PORT`` to seed images (the certificate carries that
address too); each keeps an access log (``Registry.requests()``), so a test can prove that no
request reached the source. :class:`Containerd` runs containerd 1.6 (its CRI plugin included)
inside the namespace with its own ``root``/``state``/``address`` and a ``config.toml`` of the
test's making; :meth:`NodeLab.run` runs ``ctr``, ``podman`` or ``imgmirror`` inside. runc cannot
start containers in this sandbox, so the tests stop at the pull and the sandbox image's
resolution. Everything (registries, containerd, veth, namespace, hosts file) is removed on exit.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchmarks.netlab import reclaim_stale_labs

from .certs import TestPKI, make_pki
from .cri import CriClient, CriError
from .registry import Registry, RegistryFactory, tail
from .tools import require_root, require_tool, stop_process

__all__ = ["NAMES", "SUBNET", "Containerd", "NodeLab", "node_lab"]

SUBNET = ipaddress.ip_network("10.213.19.0/30")
SOURCE = "registry.k8s.io"
CORP = "registry.corp:5000"
PLAIN = "plain.corp:5002"
DOWN = "down.corp:5003"
NAMES = ("registry.k8s.io", "registry.corp", "plain.corp", "down.corp")
USER, PASSWORD = "alice", "secret"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Containerd:
    """containerd (CRI plugin included) inside the lab's namespace, on its own socket."""

    lab: NodeLab
    directory: Path
    config: str
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "c.sock"

    @property
    def log_path(self) -> Path:
        return self.directory / "containerd.log"

    def start(self, timeout: float = 30.0) -> Containerd:
        exe = require_tool("containerd")
        config = self.directory / "config.toml"
        config.write_text(self.config)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.lab.argv([exe, "--config", str(config)]),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"containerd exited: {tail(self.log_path)}")
            if self.socket.exists():
                with CriClient(self.socket) as cri, contextlib.suppress(CriError):
                    cri.version()
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"containerd did not answer within {timeout}s: {tail(self.log_path)}")

    def stop(self) -> None:
        proc, self.process = self.process, None
        stop_process(proc, 15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def cri(self) -> CriClient:
        return CriClient(self.socket)

    def ctr(
        self, *args: str, namespace: str = "k8s.io", timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``ctr --address SOCKET -n NAMESPACE ARGS`` inside the namespace (never raises), with
        the native snapshotter (this sandbox has no overlayfs)."""
        exe = require_tool("ctr")
        return self.lab.run(
            [exe, "--address", str(self.socket), "-n", namespace, *args],
            timeout=timeout,
            env={"CONTAINERD_SNAPSHOTTER": "native"},
        )


def containerd_config(
    directory: Path,
    *,
    config_path: Path | str | None = None,
    sandbox_image: str = "registry.k8s.io/pause:3.9",
    extra: str = "",
) -> str:
    """A containerd 1.6 ``config.toml`` (version 2) for a :class:`Containerd` in
    ``directory``: native snapshotter (no overlay mounts here), CNI and ``opt`` under the
    directory, the CRI plugin reading ``config_path``. ``extra`` is appended as it is, as an
    administrator appends a section to ``/etc/containerd/config.toml``."""
    lines = [
        "version = 2",
        f'root = "{directory}/root"',
        f'state = "{directory}/state"',
        "disabled_plugins = ["
        '"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", '
        '"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", '
        '"io.containerd.snapshotter.v1.overlayfs", "io.containerd.tracing.processor.v1.otlp"]',
        "[grpc]",
        f'  address = "{directory}/c.sock"',
        "[ttrpc]",
        f'  address = "{directory}/c.sock.ttrpc"',
        '[plugins."io.containerd.internal.v1.opt"]',
        f'  path = "{directory}/opt"',
        '[plugins."io.containerd.grpc.v1.cri"]',
        f'  sandbox_image = "{sandbox_image}"',
        "  disable_apparmor = true",
        '[plugins."io.containerd.grpc.v1.cri".containerd]',
        '  snapshotter = "native"',
        '[plugins."io.containerd.grpc.v1.cri".cni]',
        f'  bin_dir = "{directory}/cni/bin"',
        f'  conf_dir = "{directory}/cni/conf"',
        '[plugins."io.containerd.grpc.v1.cri".registry]',
        f'  config_path = "{config_path or directory / "certs.d"}"',
    ]
    return "\n".join(lines) + "\n" + extra


@dataclass
class NodeLab:
    """See the module docstring."""

    namespace: str
    host_ip: str
    ns_ip: str
    pki: TestPKI
    """The public CA (trusted by the namespace's system store): registry.k8s.io's."""
    corp_pki: TestPKI
    """The corporate CA: registry.corp's and plain.corp's (``--ca-file`` for node-config)."""
    factory: RegistryFactory
    corp_factory: RegistryFactory
    directory: Path
    registries: dict[str, Registry] = field(default_factory=dict)
    daemons: list[Containerd] = field(default_factory=list)

    def argv(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside the namespace (with its hosts file)."""
        return ["ip", "netns", "exec", self.namespace, *command]

    def run(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside the namespace; never raises on failure."""
        return subprocess.run(
            self.argv(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else {**os.environ, **env},
            input=stdin,
        )

    def imgmirror(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``python -m imgmirror ARGS`` inside the namespace, as a shell user on the node."""
        import sys

        return self.run([sys.executable, "-m", "imgmirror", *args], env=env)

    def seed_address(self, name: str) -> str:
        """Where the test process reaches the registry called ``name`` (``ns_ip:PORT``)."""
        return self.registries[name].host

    def registry(self, name: str) -> Registry:
        return self.registries[name]

    def containerd(self, **kwargs: object) -> Containerd:
        """A started :class:`Containerd` with :func:`containerd_config` ``(**kwargs)``; stopped
        when the lab closes (or by :meth:`Containerd.stop`)."""
        directory = Path(tempfile.mkdtemp(prefix="c", dir=self.directory))
        config = containerd_config(directory, **kwargs)  # type: ignore[arg-type]
        daemon = Containerd(self, directory, config)
        self.daemons.append(daemon)
        return daemon.start()

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        self.factory.stop_all()
        self.corp_factory.stop_all()


def _start_registries(lab: NodeLab) -> None:
    ns, ip = lab.namespace, lab.ns_ip
    lab.registries[SOURCE] = lab.factory(name="k8s", tls=True, port=443, bind=ip, netns=ns)
    lab.registries[CORP] = lab.corp_factory(
        name="corp", tls=True, auth="htpasswd", port=5000, bind=ip, netns=ns
    )
    lab.registries[PLAIN] = lab.corp_factory(name="plain", port=5002, bind=ip, netns=ns)


def _system_store(hosts_dir: Path, ca: Path) -> None:
    """The namespace's ``/etc/ssl``: only the public test CA (and OpenSSL's config)."""
    certs = hosts_dir / "ssl" / "certs"
    certs.mkdir(parents=True)
    (certs / "ca-certificates.crt").write_bytes(ca.read_bytes())
    cnf = Path("/etc/ssl/openssl.cnf")
    if cnf.exists():
        shutil.copyfile(cnf, hosts_dir / "ssl" / "openssl.cnf")


@contextlib.contextmanager
def node_lab() -> Iterator[NodeLab]:
    """Create the namespace, hosts file and registries (root only); remove them on exit."""
    require_root("the node lab (ip netns add)")
    require_tool("ip")
    host_ip, ns_ip = (str(a) for a in SUBNET.hosts())
    reclaim_stale_labs(("imgm-h19", "imh19h"))
    in_use = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True)
    if f" {host_ip}/" in in_use.stdout:
        raise RuntimeError(f"{host_ip} is already in use here (another node lab running?)")
    tag = str(os.getpid())
    namespace, outside, inside = f"imgm-h19-{tag}", f"imh19h{tag}", f"imh19n{tag}"
    # A short directory: containerd's socket path must stay under 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="imgm-h19-", dir="/tmp"))
    hosts_dir = Path("/etc/netns") / namespace
    _ip("netns", "add", namespace)
    lab: NodeLab | None = None
    try:
        hosts_dir.mkdir(parents=True, exist_ok=True)
        (hosts_dir / "hosts").write_text(
            f"127.0.0.1 localhost\n::1 localhost\n{ns_ip} {' '.join(NAMES)}\n"
        )
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"{host_ip}/{SUBNET.prefixlen}", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", namespace, "addr", "add", f"{ns_ip}/{SUBNET.prefixlen}", "dev", inside)
        _ip("-n", namespace, "link", "set", inside, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        pki = make_pki(directory / "pki", extra_ips=[ns_ip], extra_names=[SOURCE])
        corp = make_pki(directory / "corp", extra_ips=[ns_ip], extra_names=NAMES[1:])
        _system_store(hosts_dir, pki.ca_cert)
        lab = NodeLab(
            namespace,
            host_ip,
            ns_ip,
            pki,
            corp,
            RegistryFactory(directory / "reg", pki),
            RegistryFactory(directory / "corpreg", corp),
            directory,
        )
        _start_registries(lab)
        yield lab
    finally:
        if lab is not None:
            lab.close()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", outside)
        _ip("netns", "del", namespace)
        shutil.rmtree(hosts_dir, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)

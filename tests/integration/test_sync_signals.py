"""SIGTERM (a CronJob's pod going away) ends ``imgmirror sync`` like Ctrl-C: exit 143 with one
line, nothing half-written, and the next run completes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultPlan, FaultProxy
from tests.support.registry import RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.sharedworld import seed_shared_world
from tests.support.tools import run_cli

pytestmark = [pytest.mark.registry]


def test_sigterm_ends_a_sync_cleanly_and_the_next_run_completes(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    source = registry_factory(name="src", log_level="warn")
    dest = registry_factory(name="dst", log_level="warn")
    world = seed_shared_world(source)
    slow = FaultPlan(seed=1, rate=1.0, kinds=("stall",), stall=2.0)  # every reply stops 2 s
    with FaultProxy(("127.0.0.1", source.port), slow) as proxy:
        path = tmp_path / "sync.yaml"
        expected = world.sync_file(path, f"{dest.host}/m", source_host=proxy.host)
        proc = subprocess.Popen(
            [sys.executable, "-m", "imgmirror", "sync", str(path), "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3.0)  # mid-run: the tag lists are read, images are on their way
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr == "imgmirror: terminated\n"
    with RegistryClient(dest) as client:  # whatever was tagged is whole
        for ref, digest in expected.items():
            repo, tag = ref.rsplit(":", 1)
            if client.manifest_exists(repo, tag):
                assert client.assert_complete(repo, tag) == digest, ref

    world.sync_file(path, f"{dest.host}/m")  # the next run, straight from the source
    done = run_cli("sync", str(path), "-q")
    assert done.returncode == 0, done.stderr
    with RegistryClient(dest) as client:
        for ref, digest in expected.items():
            repo, tag = ref.rsplit(":", 1)
            assert client.assert_complete(repo, tag) == digest, ref

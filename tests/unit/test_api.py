"""The library's surface says what the CLI says: the same settings, the same errors, the
results the docs promise."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import imgmirror
from imgmirror import errors
from imgmirror.api import copy, lookup, push, referrers, save, sync
from imgmirror.registry.pool import DEFAULT_JOBS
from imgmirror.syncing.report import SyncReport, SyncResult

ONE_SHOTS = [
    getattr(module, name)
    for module in (copy, lookup, push, referrers, save, sync)
    for name in module.__all__
]
#: The CLI's options that change how a registry is reached, by their library names.
CONNECTION = {"timeout", "ca_file", "certs_dirs", "insecure_registries", "authfile", "options"}


@pytest.mark.parametrize("function", ONE_SHOTS, ids=lambda f: f.__name__)
def test_every_one_shot_takes_the_connection_settings(function):
    assert set(inspect.signature(function).parameters) >= CONNECTION


def test_the_session_takes_them_too():
    assert CONNECTION - {"options"} <= set(inspect.signature(imgmirror.Session).parameters)
    session = imgmirror.Session(
        timeout=7, ca_file="/ca.pem", certs_dirs=["/certs"], insecure_registries=["r.local"]
    )
    with session:
        assert session.options.timeout == 7
        assert session.options.ca_file == "/ca.pem"
        assert session.options.certs_dirs[0] == "/certs"  # searched before the defaults
        assert session.options.is_insecure("r.local")


@pytest.mark.parametrize("name", ["copy", "save", "sync"])
def test_default_jobs_show_their_value(name):
    one_shot = getattr(imgmirror, name)
    assert inspect.signature(one_shot).parameters["jobs"].default == DEFAULT_JOBS


def test_a_bad_shard_is_an_imgmirror_error():
    with pytest.raises(imgmirror.ImgmirrorError, match="must be I/N"):
        imgmirror.sync("unused.yaml", shard="bad")


def test_the_public_functions_are_the_one_shots():
    assert imgmirror.copy is copy.copy
    assert imgmirror.sync is sync.sync
    assert imgmirror.find_referrers is referrers.find_referrers


def test_sync_report_to_json():
    done = SyncResult("q.io/a:1", "r.io/a:1", "sha256:" + "a" * 64, "copied", 10, None, "f:3")
    report = SyncReport((done,), 1.5)
    document = report.to_json()
    assert document["totals"]["states"]["copied"] == 1  # type: ignore[index]
    assert document["mode"] == "sync"
    assert document["images"] == [done.report_entry()]


def test_the_error_tree_in_the_docstring_names_every_error():
    source = Path(errors.__file__).read_text()
    classes = {
        node.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and node.name[0].isupper()
    }
    drawn = errors.__doc__ or ""
    assert sorted(c for c in classes if c not in drawn) == []

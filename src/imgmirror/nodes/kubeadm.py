"""The pause image kubeadm expects for each Kubernetes minor version (kubeadm#2801).

``kubeadm config images list`` names ``registry.k8s.io/pause:<PauseVersion>``, where
``PauseVersion`` is a constant in kubeadm's ``cmd/kubeadm/app/constants/constants.go``
(kubernetes/kubernetes, one value per release branch). The table below is that constant per
release: 3.2 for 1.19 and 1.20, 3.4.1 for 1.21, 3.5 for 1.22, 3.6 for 1.23, 3.7 for 1.24,
3.8 for 1.25, 3.9 for 1.26 to 1.30, 3.10 for 1.31 to 1.33, 3.10.1 from 1.34 (checked against
kubernetes/kubernetes's constants.go of the 1.32 branch, ``PauseVersion = "3.10"``, and of 1.35,
``"3.10.1"``, with the 1.21 to 1.28 values as installers that read them record). containerd's
own default ``sandbox_image`` differs (``pause:3.6`` in 1.6, ``3.10`` in 2.0), which is what
breaks offline nodes: kubeadm pre-loads one and containerd asks for the other.
"""

from __future__ import annotations

import re

__all__ = ["PAUSE_VERSIONS", "expected_pause", "minor_of"]

#: Kubernetes minor version -> kubeadm's ``PauseVersion``.
PAUSE_VERSIONS: dict[int, str] = {
    19: "3.2",
    20: "3.2",
    21: "3.4.1",
    22: "3.5",
    23: "3.6",
    24: "3.7",
    25: "3.8",
    26: "3.9",
    27: "3.9",
    28: "3.9",
    29: "3.9",
    30: "3.9",
    31: "3.10",
    32: "3.10",
    33: "3.10",
    34: "3.10.1",
    35: "3.10.1",
}

_VERSION = re.compile(r"v?1\.(\d+)(?:\.\d+)?(?:[-+].*)?")


def minor_of(version: str) -> int | None:
    """``25`` for ``v1.25.3`` or ``1.25``; None for anything else."""
    match = _VERSION.fullmatch(version.strip())
    return int(match.group(1)) if match else None


def expected_pause(version: str) -> str | None:
    """The pause tag kubeadm uses for Kubernetes ``version`` (newer minors than the table
    get its newest entry); None when ``version`` is not a Kubernetes 1.x version or older than
    the table."""
    minor = minor_of(version)
    if minor is None or minor < min(PAUSE_VERSIONS):
        return None
    return PAUSE_VERSIONS.get(minor, PAUSE_VERSIONS[max(PAUSE_VERSIONS)])

"""``nox -s demo``: the pause story end to end, on two local registries.

Starts a token-auth "public" registry (anonymous pull, like gcr.io or registry.k8s.io) seeded
with a pause image whose layer holds a static binary compiled here, and a credentialed
"internal" registry behind TLS with a private CA (like artifactrepo1.corp.net). Then runs
``imgmirror copy`` across, shows what it did, and checks the digest at the destination.
Every server it starts is stopped at the end.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.certs import make_pki
from tests.support.images import build_pause_binary, pause_image
from tests.support.registry import RegistryFactory
from tests.support.seed import seed


def run(*args: str) -> str:
    print(f"$ imgmirror {shlex.join(args)}", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "imgmirror", *args], check=True, stdout=subprocess.PIPE, text=True
    )
    print(proc.stdout, end="", flush=True)
    return proc.stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="imgmirror-demo-") as tmp:
        work = Path(tmp)
        factory = RegistryFactory(work / "registries", make_pki(work / "pki"))
        try:
            public = factory(name="public", auth="token", anonymous_pull=True)
            internal = factory(
                name="internal", auth="htpasswd", tls=True, users={"tdongsi": "s3cret"}
            )
            image = pause_image(build_pause_binary(work / "pause"))
            seed(public, "google_containers/pause", "3.9", image, creds=("pusher", "pushpass"))
            print(f"public registry   (token auth, anonymous pull): {public.host}")
            print(f"internal registry (TLS with a private CA, credentials): {internal.host}")
            print(f"seeded {public.host}/google_containers/pause:3.9 = {image.digest}\n")

            run(
                "copy",
                f"{public.host}/google_containers/pause:3.9",
                f"{internal.host}/tdongsi/pause:3.9",
                "--dest-creds",
                "tdongsi:s3cret",
                "--ca-file",
                str(internal.ca_file),
            )
            print()
            last_line = run(
                "copy",
                f"{public.host}/google_containers/pause:3.9",
                f"{internal.host}/tdongsi/pause:3.9",
                "--dest-creds",
                "tdongsi:s3cret",
                "--ca-file",
                str(internal.ca_file),
                "--json",
            ).splitlines()[-1]
            again = json.loads(last_line)
            if again["digest"] != image.digest:
                sys.exit(f"digest changed: {again['digest']} != {image.digest}")
            print(
                f"\ndigest at the destination = digest at the source = {image.digest}\n"
                f"the second run found all {again['blobs_skipped']} blobs there and moved none."
            )
        finally:
            factory.stop_all()


if __name__ == "__main__":
    main()

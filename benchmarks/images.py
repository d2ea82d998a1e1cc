"""The plain Jupyter image the spawn benchmarks measure against, built with no image registry.

labhub's default image (labhub.cli.image.DEFAULT_IMAGE) starts lean: it removes
rfc3987-syntax and lark, which jsonschema's format checkers import when Jupyter
starts (about 1.2 s). An ordinary Jupyter install still carries them, so the
plain image is labhub's image with rfc3987-syntax pip-installed back. Its wheels
are fetched by the host's own pip; the build itself runs with no network.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.progress import say

#: What labhub's image removed for a lean start and an ordinary install has (lark comes with it).
PLAIN_EXTRA_PACKAGES = ("rfc3987-syntax",)
#: Label on the plain image: the id of the image it was built from, the cache's key.
BASE_LABEL = "org.labhub.bench.base"

DOCKERFILE = """
FROM {base}
COPY wheels /tmp/bench-wheels
RUN /opt/conda/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \\
        --find-links /tmp/bench-wheels {packages} \\
    && rm -rf /tmp/bench-wheels \\
    && /opt/conda/bin/python -c "import rfc3987_syntax, jsonschema"
LABEL {label}={base_id}
"""


def plain_image_tag(base: str) -> str:
    """``labhub/singleuser:6.1.1-ds1`` gives ``labhub-bench/plain-jupyter:6.1.1-ds1``."""
    return "labhub-bench/plain-jupyter:" + base.rsplit(":", 1)[-1]


def _inspect(tag: str, template: str) -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", template, tag],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_plain_image(base: str) -> str:
    """Return the plain image's tag, building it FROM ``base`` unless it exists for this base."""
    tag = plain_image_tag(base)
    base_id = _inspect(base, "{{.Id}}")
    if base_id is None:
        raise RuntimeError(f"the base image {base} is not on this engine; build it first")
    built_from = _inspect(tag, '{{index .Config.Labels "' + BASE_LABEL + '"}}')
    if built_from == base_id:
        say("image", f"{tag}: cached (built FROM {base})")
        return tag
    say("image", f"building {tag} FROM {base} with {', '.join(PLAIN_EXTRA_PACKAGES)}")
    with tempfile.TemporaryDirectory(prefix="labhub-bench-image-") as tmp:
        context = Path(tmp)
        download = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--dest",
                str(context / "wheels"),
                *PLAIN_EXTRA_PACKAGES,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if download.returncode != 0:
            raise RuntimeError(
                f"pip download {PLAIN_EXTRA_PACKAGES} failed:\n{download.stderr[-2000:]}"
            )
        (context / "Dockerfile").write_text(
            DOCKERFILE.format(
                base=base,
                packages=" ".join(PLAIN_EXTRA_PACKAGES),
                label=BASE_LABEL,
                base_id=base_id,
            )
        )
        build = subprocess.run(
            ["docker", "build", "--network", "none", "-t", tag, str(context)],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode != 0:
            raise RuntimeError(f"building {tag} failed:\n{(build.stdout + build.stderr)[-2000:]}")
    say("image", f"built {tag}")
    return tag

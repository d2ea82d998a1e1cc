"""The documentation builds with warnings as errors, and its reference lists every lab setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-q",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    reference = (tmp_path / "html" / "configuration-reference.html").read_text()
    for setting in (
        "lab_root",
        "cifs_shares",
        "uid_strategy",
        "dummy_allow_non_loopback",
        "admin_groups",
    ):
        assert setting in reference

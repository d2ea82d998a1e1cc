"""A tiny wheel made on the spot: a package a lab can pip-install with no index and no network."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def make_wheel(package: str, version: str, init_source: str) -> tuple[str, bytes]:
    """A pure-Python wheel holding ``package/__init__.py``; return its file name and bytes."""
    dist_info = f"{package}-{version}.dist-info"
    files = {
        f"{package}/__init__.py": init_source.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: labhub-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return f"{package}-{version}-py3-none-any.whl", buffer.getvalue()

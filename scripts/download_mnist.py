#!/usr/bin/env python
"""Download the full MNIST (or Fashion-MNIST) IDX files, verified by MD5.

Usage::

    python scripts/download_mnist.py [--dest data/raw/mnist] [--dataset mnist|fashion-mnist]

Fetches the four published ``*-idx?-ubyte.gz`` files from the mirrors that
torchvision uses (tried in order), checks each against its published MD5,
writes it atomically and skips files already present and valid. Once the four
files are in ``data/raw/mnist/``, ``rr_utils.data.load_dataset("mnist", ...)``
uses them instead of the embedded 10k subset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rr_utils.data import DATASETS, MIRRORS, default_data_dir, download_raw  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--dest", type=Path, help="target folder (default: <data dir>/raw/<dataset>)")
    parser.add_argument("--mirror", action="append", dest="mirrors", metavar="URL",
                        help="base URL to try (repeatable; default: torchvision's mirrors)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per connection attempt")
    args = parser.parse_args(argv)

    dest = args.dest if args.dest is not None else default_data_dir() / "raw" / args.dataset
    mirrors = args.mirrors or MIRRORS[args.dataset]
    try:
        paths = download_raw(args.dataset, dest, mirrors=mirrors, timeout=args.timeout)
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dataset}: {len(paths)} files ready in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

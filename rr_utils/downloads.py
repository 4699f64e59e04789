"""Verified downloads of the published MNIST and Fashion-MNIST files (pooch).

``download_raw``, ``download_file`` and ``ensure_dataset`` use pooch: each
``.gz`` file goes to a temporary file next to its destination and is moved into
place only when its MD5 equals the published one (``RAW_MD5``); a file that does
not match is deleted and the download fails with a ValueError naming it.
``rr_utils.data.load_dataset`` itself never downloads.

``RR_MNIST_URL``, ``RR_FASHION_MNIST_URL``: a base URL replacing
``MIRRORS[name]`` (a private mirror; the tests' local HTTP server). The files
must still match ``RAW_MD5``.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

from rr_utils.data import DATASETS, SPLITS, SYSTEM_DIRS, default_data_dir, find_source, load_dataset
from rr_utils.idx import md5_file

__all__ = ["download_file", "download_raw", "ensure_dataset", "mirrors_for", "url_env", "RAW_MD5", "MIRRORS"]

# Published MD5s of the .gz files (as listed by torchvision; Fashion-MNIST's are
# also those of its README, github.com/zalandoresearch/fashion-mnist).
RAW_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

# Mirrors tried in order (torchvision's lists; Fashion-MNIST's is the location its
# README links to). $RR_MNIST_URL / $RR_FASHION_MNIST_URL replace them (url_env).
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

_PROTOCOLS = ("http", "https")


def url_env(name: str) -> str:
    """The environment variable replacing ``MIRRORS[name]``: ``RR_MNIST_URL``, ``RR_FASHION_MNIST_URL``.

    Parameters
    ----------
    name : str
        The data set, e.g. "fashion-mnist".

    Returns
    -------
    str
    """
    return "RR_" + name.upper().replace("-", "_") + "_URL"


def mirrors_for(name: str) -> tuple[str, ...]:
    """Base URLs to try for ``name``: ``$RR_<NAME>_URL`` when set, else ``MIRRORS[name]``.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}

    Returns
    -------
    tuple of str
        In the order to try them.

    Raises
    ------
    KeyError
        For a data set without mirrors when no ``$RR_<NAME>_URL`` is set.
    """
    env = os.environ.get(url_env(name), "").strip()
    return (env,) if env else MIRRORS[name]


@contextmanager
def _quiet_pooch():
    """pooch logs each download at INFO on stderr; our own lines say what happened."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def download_file(url: str, dest: str | os.PathLike, md5: str, timeout: float = 60.0, verbose: bool = True) -> Path:
    """Download ``url`` to ``dest`` with pooch and check its MD5; return ``dest``.

    If ``dest`` already exists with the right MD5 nothing is fetched. The
    download goes to a temporary file in ``dest``'s folder that replaces
    ``dest`` only once the MD5 matches and is deleted otherwise, so a failure
    never leaves a partial or wrong file at ``dest`` (an existing ``dest`` is
    kept as it was). URLs: http or https.

    Parameters
    ----------
    url : str
        An http or https URL.
    dest : str or path-like
        The file to write.
    md5 : str
        The expected MD5 (hex).
    timeout : float
        Seconds before the connection gives up.
    verbose : bool
        Print what is fetched.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    ConnectionError
        When the URL cannot be fetched (no network, HTTP error, timeout).
    ValueError
        When the MD5 differs or the scheme is not supported.
    """
    import pooch
    import requests

    dest = Path(dest)
    md5 = md5.lower()
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in _PROTOCOLS:
        raise ValueError(f"{url}: unsupported URL scheme {scheme!r}; downloads use {', '.join(_PROTOCOLS)}")
    if dest.is_file() and md5_file(dest) == md5:
        if verbose:
            print(f"[data] {dest}: present, md5 ok, skipped")
        return dest
    existed = dest.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    downloader = pooch.HTTPDownloader(timeout=timeout, progressbar=False)
    try:
        with _quiet_pooch():
            pooch.retrieve(url, known_hash=f"md5:{md5}", fname=dest.name, path=dest.parent, downloader=downloader)
    except requests.exceptions.RequestException as exc:  # connection, HTTP status, timeout
        raise ConnectionError(f"could not download {url}: {exc}") from None
    except ValueError as exc:  # pooch.hashes.hash_matches: "... expected md5:... but got md5:..."
        got = str(exc).split("but got ")[-1].split(".")[0] if "but got " in str(exc) else "?"
        kept = f"the existing {dest} was kept as it was" if existed else f"{dest} was not written"
        raise ValueError(
            f"{url}: md5 mismatch, expected {md5}, got {got.removeprefix('md5:')}: the downloaded file is "
            f"corrupted or not the published one; it was deleted and {kept}"
        ) from None
    if verbose:
        print(f"[data] {dest}: downloaded from {url}, md5 ok")
    return dest


def download_raw(
    name: str = "mnist",
    dest: str | os.PathLike | None = None,
    mirrors: tuple[str, ...] | list[str] | None = None,
    timeout: float = 60.0,
    verbose: bool = True,
) -> list[Path]:
    """Fetch the four published .gz files of ``name`` into ``dest``, verified by MD5.

    ``dest`` defaults to ``<data_dir>/raw/<name>``; ``mirrors`` (base URLs)
    default to ``mirrors_for(name)`` (``$RR_<NAME>_URL``, else
    ``MIRRORS[name]``) and are tried in order for each file. Files already
    present with the right MD5 are skipped.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    dest : str or path-like, optional
        The folder (default ``<data_dir>/raw/<name>``).
    mirrors : sequence of str, optional
        Base URLs, tried in order (default ``mirrors_for(name)``).
    timeout : float
        Seconds before a connection gives up.
    verbose : bool
        Print what is fetched.

    Returns
    -------
    list of pathlib.Path
        The four ``.gz`` files.

    Raises
    ------
    ValueError
        For an unknown name.
    ConnectionError
        Listing every failed attempt when a file cannot be obtained (a checksum mismatch
        included: the server sent other bytes than the published file).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset name {name!r}; valid choices: {', '.join(DATASETS)}")
    dest = Path(dest) if dest is not None else default_data_dir() / "raw" / name
    mirrors = tuple(mirrors) if mirrors else mirrors_for(name)
    out = []
    for filename, md5 in RAW_MD5[name].items():
        errors, mismatch = [], False
        for i, base in enumerate(mirrors):
            url = base if base.endswith("/") else base + "/"
            try:
                out.append(download_file(url + filename, dest / filename, md5, timeout=timeout, verbose=verbose))
                break
            except (ConnectionError, ValueError) as exc:
                errors.append(str(exc))
                mismatch |= "md5 mismatch" in str(exc)
                if verbose and i + 1 < len(mirrors):
                    print(f"[data] {exc}; trying the next mirror")
        else:
            why = ("a checksum mismatch means the file served is corrupted or not the published one; "
                   "nothing that failed the check was kept" if mismatch else "no network access?")
            raise ConnectionError(
                f"could not obtain {filename} for {name} from any mirror ({why}). Attempts:\n  "
                + "\n  ".join(errors)
                + f"\nYou can place the file in {dest} by hand (md5 {md5})."
            )
    return out


def ensure_dataset(
    name: str = "fashion-mnist",
    data_dir: str | os.PathLike | None = None,
    mirrors: tuple[str, ...] | list[str] | None = None,
    timeout: float = 60.0,
    verbose: bool = True,
) -> tuple[str, Path]:
    """Make the four IDX files of ``name`` available; return ``(how, folder)``.

    ``how`` is ``"present"`` when ``find_source`` already finds a complete IDX
    set (``<data_dir>/raw/<name>/``, then the system folders such as the Debian
    package's, unless ``$RR_NO_SYSTEM_DATA``), else ``"downloaded"``: the
    published files are fetched into ``<data_dir>/raw/<name>/`` by
    ``download_raw`` (MD5-checked, an incomplete set there completed) and both
    splits are read once to check them. Prints one line saying which.
    For ``"mnist"`` the embedded subset does not count: this fetches the full set.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    data_dir : str or path-like, optional
        The data folder (default ``rr_utils.data.default_data_dir()``).
    mirrors, timeout, verbose
        As in ``download_raw``.

    Returns
    -------
    tuple of (str, pathlib.Path)
        ``("present" or "downloaded", the folder holding the four files)``.

    Raises
    ------
    ConnectionError
        When the download fails.
    ValueError
        For an unknown name, or downloaded files that are not valid IDX data.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset name {name!r}; valid choices: {', '.join(DATASETS)}")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        kind, paths = find_source(name, "train", data_dir)
    except FileNotFoundError:  # nothing, or an incomplete set: the download fills <data_dir>/raw/<name>
        kind, paths = None, ()
    if kind == "idx":
        folder = paths[0].parent
        if verbose:
            package = " (Debian package dataset-fashion-mnist)" if folder in SYSTEM_DIRS.get("fashion-mnist", ()) else ""
            print(f"[data] {name}: present in {folder}{package}; nothing downloaded")
        return "present", folder
    dest = data_dir / "raw" / name
    mirrors = tuple(mirrors) if mirrors else mirrors_for(name)
    if verbose:
        print(f"[data] {name}: not found; downloading the published files from {', '.join(mirrors)} into {dest}")
    download_raw(name, dest, mirrors=mirrors, timeout=timeout, verbose=verbose)
    for split in SPLITS:  # structural check of the content (read_idx_pair); find_source prefers dest
        load_dataset(name, split, data_dir=data_dir, verbose=False)
    if verbose:
        print(f"[data] {name}: downloaded into {dest}, md5 of the four files checked")
    return "downloaded", dest

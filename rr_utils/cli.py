"""rr-relevance: resolution, relevance and noise of a file of binary states.

    rr-relevance states.npy                 # (M, n) array of 0/1 states (or +-1 spins), one row per input
    rr-relevance states.csv --json          # comma-, tab- or space-separated rows (a header line is skipped)
    rr-relevance probs.pt --threshold 0.5   # probabilities (sigmoid outputs): a unit is on where p > 0.5
    rr-relevance acts.npy --binarize sign   # tanh outputs or pre-activations: on where x > 0
    rr-relevance acts.txt --binarize positive   # ReLU outputs (>= 0): on where x > 0
    rr-relevance counts.txt --counts        # one count k_s per distinct state instead
    python make_states.py | rr-relevance -  # read the text (or .npy / .npz bytes) from standard input

File types: .npy, .npz (one array), .pt / .pth (one tensor, loaded with
torch.load(weights_only=True)), text (.csv, .tsv, .txt, .dat or anything else
that is not one of the binary formats).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

QUANTITIES = """quantities (nats; 'norm' = divided by log M):
  M            number of inputs (rows, or the sum of the counts)
  n_states     number of distinct states
  H_s          resolution H[s]: entropy of the state a random input falls in
  H_K          relevance H[K]: entropy of the frequency k of that state
  noise        H[s|K] = H[s] - H[K]: resolution not explained by the frequencies
  mu           fitted exponent of m_k ~ k^-(1+mu) (1 = Zipf's law), with its standard error;
               'not fitted' (with the reason) when too few states or the fit ends on the edge of its range
  bound_H_K    maximal relevance reachable at this H[s] and M; gap_to_bound = bound_H_K - H_K
"""

_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", "")
_BINARY_SUFFIXES = (".npy", ".npz", ".pt", ".pth")


def _parse_text(text: str, name: str, counts: bool) -> np.ndarray:
    """Rows of numbers separated by commas, tabs or spaces; a first line that is not numbers is a header."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return np.zeros((0,) if counts else (0, 0))
    first = lines[0]
    delim = "," if "," in first else ("\t" if "\t" in first else None)

    def numbers(line):
        return [float(p) for p in (line.split(delim) if delim else line.split())]

    try:
        numbers(first)
    except ValueError:
        lines = lines[1:]  # a header (column names)
        if not lines:
            return np.zeros((0,) if counts else (0, 0))
    rows = []
    for i, line in enumerate(lines, start=1):
        try:
            rows.append(numbers(line))
        except ValueError as exc:
            raise ValueError(f"{name}: cannot be parsed (data line {i}: {exc})") from None
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ValueError(f"{name}: cannot be parsed (rows of different lengths: {sorted(widths)[:5]})")
    arr = np.array(rows, dtype=float)
    if counts:
        if arr.shape[1] != 1:
            raise ValueError(f"counts: expected a 1-D array of counts (one per line), got shape {arr.shape}")
        return arr[:, 0]
    return arr


def _load_torch(blob: bytes, name: str) -> np.ndarray:
    import torch

    try:
        obj = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, disallowed globals ...
        if "Unsupported global" in str(exc):
            detail = "it holds Python objects other than tensors, which are never unpickled (weights_only=True)"
        else:
            detail = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        raise ValueError(f"{name}: unreadable or truncated torch file ({detail})") from None
    if isinstance(obj, dict):
        tensors = [v for v in obj.values() if isinstance(v, torch.Tensor)]
        if len(tensors) != 1 or len(obj) != 1:
            raise ValueError(f"{name}: a torch file must hold one tensor (or a dict with one), found keys {list(obj)[:8]}")
        obj = tensors[0]
    elif isinstance(obj, (list, tuple)) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{name}: a torch file must hold one tensor, found a {type(obj).__name__}")
    obj = obj.detach()
    return (obj.float() if obj.dtype in (torch.bfloat16, torch.float16) else obj).numpy()


def _load_bytes(blob: bytes, name: str, suffix: str, counts: bool) -> np.ndarray:
    if suffix == ".npy" or (suffix not in _BINARY_SUFFIXES and blob.startswith(_NPY_MAGIC)):
        return np.load(io.BytesIO(blob), allow_pickle=False)
    if suffix in (".pt", ".pth"):
        return _load_torch(blob, name)
    if suffix == ".npz" or (suffix not in _BINARY_SUFFIXES and blob.startswith(_ZIP_MAGIC)):
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            names = list(z.keys())
            if len(names) != 1:
                raise ValueError(f"{name}: .npz must hold exactly one array, found {names}")
            return z[names[0]]
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: cannot be parsed (not text, and not .npy, .npz, .pt or .pth)") from None
    if "\x00" in text:
        raise ValueError(f"{name}: cannot be parsed (binary data in a text file)")
    return _parse_text(text, name, counts)


def _load_array(path, counts: bool, stdin=None) -> np.ndarray:
    """The array in ``path`` ('-' = standard input): see the module docstring for the formats."""
    if str(path) == "-":
        name, suffix = "<stdin>", ""
        stream = stdin if stdin is not None else sys.stdin.buffer
        blob = stream.read()
        if isinstance(blob, str):
            blob = blob.encode()
    else:
        path = Path(path)
        name, suffix = str(path), path.suffix.lower()
        if not path.exists():
            raise ValueError(f"{path}: no such file")
        if suffix not in _TEXT_SUFFIXES + _BINARY_SUFFIXES:
            raise ValueError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz, .pt, .pth or text "
                             "(.csv, .tsv, .txt, .dat)")
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{path}: unreadable or truncated ({exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return _load_bytes(blob, name, suffix, counts)
    except ValueError as exc:
        if str(exc).startswith((name, "counts:")):
            raise
        raise ValueError(f"{name}: cannot be parsed ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name}: unreadable or truncated ({exc})") from None


def _looks_like_counts(arr: np.ndarray) -> bool:
    """One number per row, integers, some above 1: a file of counts k_s rather than states."""
    a = arr.reshape(-1) if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1) else None
    if a is None or a.size == 0 or not np.issubdtype(a.dtype, np.number):
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isfinite(a)) and np.all(a == np.round(a)) and a.min() >= 0 and a.max() > 1)


def binarize(arr: np.ndarray, rule: str | None = None, threshold: float | None = None) -> tuple[np.ndarray, str]:
    """(0/1 states, how they were obtained) from an array of states, spins, probabilities or activations.

    rule None and no threshold: 0/1 values are states, +-1 values spins (+1 -> 1);
    anything else is an error that names the option to use. ``threshold``: values
    in [0, 1] are probabilities, on where > threshold. ``rule`` "sign": on where
    x > 0 (tanh outputs, spins, pre-activations); "positive": on where x > 0, for
    rectifier outputs (negative values are an error).
    """
    from rr_utils._checks import _to_numpy

    a = _to_numpy(arr, "states")
    if a.dtype == np.bool_:
        return a, "0/1 states"
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        return a, "as given"  # check_states names the problem
    if a.ndim != 2:
        return a, "as given"
    if np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any():
            raise ValueError("states: contains NaN")
        if np.isinf(a).any():
            raise ValueError("states: contains infinite values")
    if threshold is not None:
        if a.size and (a.min() < 0 or a.max() > 1):
            raise ValueError(f"states: --threshold needs probabilities in [0, 1], found values in "
                             f"[{a.min():.4g}, {a.max():.4g}]; use --binarize sign or positive")
        return a > threshold, f"threshold (p > {threshold:g})"
    if rule == "sign":
        return a > 0, "sign (x > 0)"
    if rule == "positive":
        if a.size and a.min() < 0:
            raise ValueError(f"states: --binarize positive is for rectifier outputs (>= 0), found {a.min():.4g}; "
                             "use --binarize sign")
        return a > 0, "positive (x > 0)"
    if a.size == 0:
        return a, "as given"
    vals = np.unique(a) if a.size <= 1_000_000 else np.unique(a[:: max(1, a.shape[0] // 1000)])
    if np.isin(vals, (0, 1)).all():
        return a, "0/1 states"
    if np.isin(vals, (-1, 1)).all():
        return a > 0, "+-1 spins (+1 -> 1)"
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and hi <= 1:
        hint = "probabilities? add --threshold 0.5"
    elif lo >= 0:
        hint = "rectifier outputs? add --binarize positive"
    else:
        hint = "tanh outputs or pre-activations? add --binarize sign"
    bad = vals[~np.isin(vals, (0, 1))][:3]
    raise ValueError(f"states: values other than 0/1 or +-1 (e.g. {bad.tolist()}); {hint}")


def analyse(arr: np.ndarray, counts: bool = False) -> dict:
    """Every number the command prints, as a dict."""
    from rr_utils import bound as B
    from rr_utils import entropy as E
    from rr_utils._checks import check_counts

    c = check_counts(arr) if counts else E.state_counts(arr)
    out = E.summary(c)
    try:
        fit = E.fit_power_law(c)
    except ValueError as exc:  # too few states to fit
        out.update(mu=None, mu_err=None, mu_k_min=None, mu_fitted=False, mu_reason=str(exc))
    else:
        if fit.fitted:
            out.update(mu=fit.mu, mu_err=fit.mu_err, mu_k_min=fit.k_min, mu_fitted=True, mu_reason="")
        else:
            out.update(mu=None, mu_err=None, mu_k_min=None, mu_fitted=False, mu_reason=fit.reason)
    M = out["M"]
    out["bound_H_K"] = float(B.bound_at(M, out["H_s"]))
    out["gap_to_bound"] = out["bound_H_K"] - out["H_K"]
    return out


def _threshold(text: str) -> float:
    try:
        t = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= t < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return t


def main(argv=None, stdin=None) -> int:
    from rr_utils import __version__

    ap = argparse.ArgumentParser(prog="rr-relevance", description=__doc__ + "\n" + QUANTITIES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", help="file of states (.npy, .npz, .pt, .pth or text), or - for standard input")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--threshold", type=_threshold, default=None, metavar="T",
                     help="values are probabilities in [0, 1]: a unit is on where p > T")
    how.add_argument("--binarize", choices=("sign", "positive"), default=None,
                     help="sign: on where x > 0 (tanh, +-1, pre-activations); positive: on where x > 0 (ReLU, >= 0)")
    how.add_argument("--counts", action="store_true", help="the file holds counts k_s (one per state), not states")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = ap.parse_args(argv)
    try:
        arr = _load_array(args.path, args.counts, stdin)
        how_read = "counts"
        if not args.counts:
            try:
                arr, how_read = binarize(arr, args.binarize, args.threshold)
                res = analyse(arr)
            except ValueError as exc:
                if _looks_like_counts(np.asarray(arr)) and args.binarize is None and args.threshold is None:
                    raise ValueError(f"{'<stdin>' if args.path == '-' else args.path}: one column of integers "
                                     "above 1 looks like a file of counts k_s, not states: add --counts") from None
                raise
        else:
            res = analyse(arr, counts=True)
        res["read_as"] = how_read
    except ValueError as exc:
        print(f"rr-relevance: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
        return 0
    for key in ("M", "n_states", "H_s", "H_K", "noise", "H_s_norm", "H_K_norm", "noise_norm",
                "mu", "mu_err", "bound_H_K", "gap_to_bound"):
        v = res[key]
        print(f"{key:>12}  {v if isinstance(v, int) or v is None else f'{v:.6f}'}")
    if not res["mu_fitted"]:
        print(f"{'':>12}  mu not fitted: {res['mu_reason']}")
    if res["read_as"] not in ("0/1 states", "counts"):
        print(f"{'':>12}  states read as: {res['read_as']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

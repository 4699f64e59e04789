"""rr-relevance: resolution, relevance and noise of a file of binary states.

    rr-relevance states.npy            # (M, n) array of 0/1 states, one row per input
    rr-relevance states.csv --json     # comma-separated 0/1 rows; machine-readable output
    rr-relevance counts.txt --counts   # one count k_s per distinct state instead
"""

from __future__ import annotations

import argparse
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
  mu           fitted exponent of m_k ~ k^-(1+mu) (1 = Zipf's law), with its standard error
  bound_H_K    maximal relevance reachable at this H[s] and M; gap_to_bound = bound_H_K - H_K
"""


def _load_array(path: Path, counts: bool) -> np.ndarray:
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.keys())
                if len(names) != 1:
                    raise ValueError(f"{path}: .npz must hold exactly one array, found {names}")
                arr = z[names[0]]
        elif suffix in (".csv", ".txt", ".tsv"):
            delim = "\t" if suffix == ".tsv" else ","
            with warnings.catch_warnings():  # an empty file is reported below as 'empty', not as a warning
                warnings.simplefilter("ignore", UserWarning)
                arr = np.loadtxt(path, delimiter=None if counts else delim, ndmin=1 if counts else 2)
        else:
            raise ValueError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz or .csv")
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot be parsed ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: unreadable or truncated ({exc})") from None
    return arr


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rr-relevance", description=__doc__ + "\n" + QUANTITIES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", type=Path, help=".npy, .npz (one array) or .csv file")
    ap.add_argument("--counts", action="store_true", help="the file holds counts k_s, not states")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    try:
        res = analyse(_load_array(args.path, args.counts), counts=args.counts)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

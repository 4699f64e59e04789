"""How the per-layer numbers depend on the number of inputs M.

Every quantity of the paper is measured on a finite sample: H[s] and H[K] are
normalised by log M, the bound depends on M, and a power-law fit needs states
seen many times.  ``layer_table_vs_m`` counts one trained network's states on
random subsets of the inputs, several per M, so that "fewer inputs to count"
can be told apart from "fewer inputs to learn from" (a network trained on
fewer inputs, compared at the same M).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rr_utils import bound as B
from rr_utils import entropy as E
from rr_utils._checks import check_int

__all__ = ["layer_table_vs_m", "landmark_layers", "stability_summary", "crossed_table"]


def _fit_mu(counts) -> tuple[float, float]:
    """(mu, error), NaN when too few states or at the edge of the search range."""
    try:
        f = E.fit_power_law(counts)
    except ValueError:
        return np.nan, np.nan
    return (f.mu, f.mu_err) if f.fitted else (np.nan, np.nan)


def layer_table_vs_m(states: list[np.ndarray], widths, ms, n_repeats: int = 5, seed: int = 0,
                     fit: bool = True) -> pd.DataFrame:
    """Per-layer entropies (normalised by log M) and fitted mu on random subsets of the inputs.

    ``states``: one bool array (N, width) per layer, the thresholded states of the same N
    inputs (``DBN.binary_states``).  For each M in ``ms`` (<= N) and each of ``n_repeats``
    subsets drawn without replacement (``numpy.random.default_rng(seed)``; M = N is one
    subset, the whole set), one row per layer: M, repeat, depth, units, n_states, H_s_norm,
    H_K_norm, below_bound_norm (the bound at that M and H[s], minus H[K], over log M), mu, mu_err.
    """
    if not states:
        raise ValueError("states: expected one (N, width) array per layer, got an empty list")
    n = states[0].shape[0]
    if any(s.shape[0] != n for s in states):
        raise ValueError(f"states: every layer needs the same inputs, got rows {[s.shape[0] for s in states]}")
    if len(widths) != len(states):
        raise ValueError(f"widths: expected {len(states)} layer widths, got {len(widths)}")
    n_repeats = check_int(n_repeats, "n_repeats", 1)
    ms = [check_int(m, "ms", 2) for m in ms]
    if max(ms) > n:
        raise ValueError(f"ms: M = {max(ms)} exceeds the {n} inputs available")
    rng = np.random.default_rng(seed)
    rows = []
    for m in sorted(ms):
        for r in range(1 if m == n else n_repeats):
            idx = np.arange(n) if m == n else np.sort(rng.choice(n, m, replace=False))
            for depth, (st, w) in enumerate(zip(states, widths), start=1):
                c = E.state_counts(st[idx])
                mu, err = _fit_mu(c) if fit else (np.nan, np.nan)
                hs, hk = E.resolution(c), E.relevance(c)
                rows.append(dict(M=m, repeat=r, depth=depth, units=int(w), n_states=int(c.size),
                                 H_s_norm=hs / np.log(m), H_K_norm=hk / np.log(m),
                                 below_bound_norm=(float(B.bound_at(m, hs)) - hk) / np.log(m), mu=mu, mu_err=err))
    return pd.DataFrame(rows)


def landmark_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Per (M, repeat): the Zipf layer (fitted mu closest to 1) and the layer of maximal relevance,
    by width."""
    out = []
    for (m, r), g in table.groupby(["M", "repeat"], sort=True):
        fitted = g.dropna(subset=["mu"])
        zipf = None if fitted.empty else int(fitted.loc[(fitted["mu"] - 1).abs().idxmin(), "units"])
        out.append(dict(M=m, repeat=r, zipf_units=zipf,
                        max_relevance_units=int(g.loc[g["H_K_norm"].idxmax(), "units"])))
    return pd.DataFrame(out)


def stability_summary(landmarks: pd.DataFrame, m_min: int) -> dict:
    """Whether the Zipf and maximal-relevance layers are the same for every subset with M >= m_min."""
    sel = landmarks[landmarks["M"] >= m_min]
    if sel.empty:
        raise ValueError(f"m_min: no subset has M >= {m_min}")
    zipf = sorted({int(u) for u in sel["zipf_units"].dropna()})
    top = sorted({int(u) for u in sel["max_relevance_units"]})
    return {"m_min": int(m_min), "zipf_layers_seen": zipf, "zipf_stable": len(zipf) == 1,
            "max_relevance_layers_seen": top, "max_relevance_stable": len(top) == 1}


def crossed_table(tables: dict, ms) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Networks crossed with the number of inputs counted.

    ``tables``: {network name: a ``layer_table_vs_m`` table}; ``ms``: the M to
    compare (each in every table).  Returns (per layer: the mean over subsets
    of H[s]/log M, H[K]/log M and mu for each network and M; per network and M:
    the Zipf layer of those means (mu closest to 1) and the layer of maximal
    mean relevance).
    """
    layers, landmarks = [], []
    for name, table in tables.items():
        missing = sorted(set(ms) - set(table["M"]))
        if missing:
            raise ValueError(f"crossed_table: network {name!r} was not counted at M = {missing}")
        for m in ms:
            g = table[table["M"] == m].groupby(["depth", "units"], as_index=False)[["H_s_norm", "H_K_norm", "mu"]].mean()
            layers.append(g.assign(network=name, M=m))
            fitted = g.dropna(subset=["mu"])
            zipf = None if fitted.empty else int(fitted.loc[(fitted["mu"] - 1).abs().idxmin(), "units"])
            landmarks.append(dict(network=name, M=m, zipf_units=zipf,
                                  zipf_mu=None if zipf is None else float(fitted.loc[fitted["units"] == zipf, "mu"].iloc[0]),
                                  max_relevance_units=int(g.loc[g["H_K_norm"].idxmax(), "units"])))
    cols = ["network", "M", "depth", "units", "H_s_norm", "H_K_norm", "mu"]
    return pd.concat(layers, ignore_index=True)[cols], pd.DataFrame(landmarks)

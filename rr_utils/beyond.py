"""Glue for notebook 09: networks trained by backpropagation, read like the DBNs.

Everything here is *our* design; the paper studies DBNs only. The networks
(``rr_utils.backprop``) are trained on the first ``M`` = 8,000 training images
of a dataset (the DBN notebooks' M), their hidden layers are binarised by sign
(tanh units) and counted on those same M images at each checkpoint
(``rr_utils.probe``), and the DBN notebooks' claim tests (``rr_utils.experiments``,
same tolerances) are applied to the trained layers. Each test is repeated
against references that lack learning: the same network at epoch 0, and random
states of each layer's width matched to its resolution (``probe.matched_null``).

A network is analysed only if it has learned (``gate``): its test accuracy
(classifier) or reconstruction error (autoencoder) must reach a level stated
before its layers are read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from rr_utils import backprop as BP
from rr_utils import experiments as X
from rr_utils import probe as PR
from rr_utils.data import load_dataset

__all__ = ["load_splits", "train_network", "linear_baseline", "pca_baseline", "gate", "trajectory", "null_table", "claims",
           "M_TRAIN", "QUICK_M"]

M_TRAIN = 8_000  # as the DBN notebooks (embedded MNIST train split); the first 8,000 of Fashion-MNIST's 60,000
QUICK_M = 1_000


def load_splits(dataset: str, quick: bool = False, m_train: int = M_TRAIN) -> dict:
    """{'x', 'y' (the first m_train training images), 'x_test', 'y_test' (the whole test split), 'source'}.

    quick: the first ``QUICK_M`` training and test images.

    Fashion-MNIST that is not installed is an error that says how to install it.
    """
    try:
        tr, te = load_dataset(dataset, "train", verbose=False), load_dataset(dataset, "test", verbose=False)
    except FileNotFoundError as exc:
        if dataset != "fashion-mnist":
            raise
        raise FileNotFoundError(
            f"Fashion-MNIST is missing, and notebook 09 needs it: install the Debian package "
            f"dataset-fashion-mnist (`make data` does it: apt-get install -y dataset-fashion-mnist) or put "
            f"its four IDX files in data/raw/fashion-mnist/ (scripts/download_mnist.py --dataset fashion-mnist). "
            f"Searched: {exc}") from None
    m = QUICK_M if quick else m_train
    if len(tr) < m:
        raise ValueError(f"{dataset}: only {len(tr)} training images, need {m}")
    n_test = QUICK_M if quick else len(te)
    return {"dataset": dataset, "x": tr.images[:m], "y": tr.labels[:m], "x_test": te.images[:n_test],
            "y_test": te.labels[:n_test], "source": tr.source, "M": m}


def linear_baseline(splits: dict, epochs: int = 16, seed: int = 0) -> float:
    """Test accuracy of softmax regression (784 -> 10, no hidden layer) trained like the MLP."""
    run = BP.train(BP.mlp(widths=(splits["x"].shape[1],), seed=seed), splits["x"], splits["y"],
                   x_test=splits["x_test"], y_test=splits["y_test"], epochs=epochs, checkpoints=(), seed=seed)
    return run.history[-1]["test"]


def pca_baseline(splits: dict, k: int = 10) -> dict:
    """Test MSE per pixel of the mean image and of the best linear code with ``k`` units (PCA, clipped to [0, 1])."""
    x, xt = torch.as_tensor(splits["x"]), torch.as_tensor(splits["x_test"])
    mu = x.mean(0)
    _, _, V = torch.linalg.svd(x - mu, full_matrices=False)
    P = V[:k]
    rec = ((xt - mu) @ P.T @ P + mu).clamp(0, 1)
    return {"mean_image_mse": float(((xt - mu) ** 2).mean()), f"pca{k}_mse": float(((xt - rec) ** 2).mean()), "k": k}


def gate(run: BP.TrainedRun, level: float, why: str) -> dict:
    """Has the network learned? Classifier: test accuracy >= level; autoencoder: test MSE <= level."""
    score = run.history[-1]["test"]
    ok = score >= level if run.task == "classifier" else score <= level
    return {"task": run.task, "metric": "test accuracy" if run.task == "classifier" else "test MSE per pixel",
            "score": float(score), "level": float(level), "rule": (">= " if run.task == "classifier" else "<= ")
            + f"{level:.4g}", "why": why, "passed": bool(ok), "train_score": float(run.history[-1]["train"]),
            "epochs": int(run.history[-1]["epoch"]), "train_seconds": round(run.seconds, 2)}


def trajectory(run: BP.TrainedRun, x, epochs=None, device="auto") -> tuple[pd.DataFrame, dict]:
    """``probe.layer_report`` of the hidden layers at each checkpoint (rows: epoch, depth, units, ...),
    and the state counts of every layer at the last checkpoint ({depth: counts})."""
    layers = BP.hidden_layers(run.model)
    epochs = sorted(run.checkpoints) if epochs is None else list(epochs)
    frames = []
    for e in epochs:
        df = PR.layer_report(run.at(e), x, layers=layers, device=device)
        df.insert(0, "epoch", e)
        df.insert(1, "depth", np.arange(1, len(layers) + 1))
        frames.append(df.rename(columns={"width": "units"}))
    counts = PR.layer_counts(run.at(epochs[-1]), x, layers=layers, device=device)
    return pd.concat(frames, ignore_index=True), dict(enumerate(counts.values(), start=1))


def null_table(counts_by_depth: dict, widths, seed: int = 0) -> pd.DataFrame:
    """Per layer: random states of the same width and M, resolution matched (``probe.matched_null``), with their fit."""
    rows = []
    for (depth, c), w in zip(counts_by_depth.items(), widths):
        n = PR.matched_null(c, int(w), seed=seed + depth)
        fit = PR.report_from_counts({"null": n["counts"]}).iloc[0]
        rows.append(dict(depth=depth, units=int(w), p=n["p"], matched=n["matched"], H_s_norm=n["H_s_norm"],
                         H_K_norm=n["H_K_norm"], gap_norm=n["gap_norm"], mu=fit["mu"], mu_err=fit["mu_err"],
                         mu_fitted=bool(fit["mu_fitted"])))
    return pd.DataFrame(rows)


def _as_layer_table(t: pd.DataFrame) -> pd.DataFrame:
    """The columns ``experiments.claim_c1``/``claim_c2`` read, from a trajectory slice."""
    return t.assign(split="train", below_bound_norm=t["gap_norm"])


def claims(traj: pd.DataFrame, nulls: pd.DataFrame, near_bound_tol: float = 0.05, zipf_tol: float = 0.3,
           margin_gap: float = 0.01, margin_relevance: float = 0.02, hs_edge: float = 0.99) -> dict:
    """C1-C3 at the last checkpoint by the DBN notebooks' rules (``holds``), and against the
    matched random states (``vs_null``, our rules), with the untrained network (epoch 0) beside.

    vs_null: C1, the relevance peak exceeds the matched random states' peak by
    ``margin_relevance`` (normalised); C2, over the informative layers (H[s]/log M <
    ``hs_edge``: a layer at (1, 0) is on the bound whatever it learned), the mean
    distance below the bound is smaller than the matched random states' by
    ``margin_gap``; C3, the trained network has a Zipf layer and the matched random
    states have none (|mu - 1| < ``zipf_tol``). ``beats_untrained`` applies the same
    comparison to the network at epoch 0 (its own informative layers for C2; for C3:
    the untrained network has no Zipf layer), and ``untrained_holds_as_stated`` is
    the DBN notebooks' verdict on the network at epoch 0.
    """
    last, first = traj["epoch"].max(), traj["epoch"].min()
    tr, ut = _as_layer_table(traj[traj["epoch"] == last]), _as_layer_table(traj[traj["epoch"] == first])
    if len(nulls) != len(tr):
        raise ValueError(f"nulls: {len(nulls)} rows for {len(tr)} layers")
    c1, c2 = X.claim_c1(tr), X.claim_c2(tr, ut, near_bound_tol)
    c3 = X.claim_c3(tr[["depth", "units", "mu", "mu_err"]], zipf_tol)
    c3_u = X.claim_c3(ut[["depth", "units", "mu", "mu_err"]], zipf_tol)
    c1_u, c2_u = X.claim_c1(ut), X.claim_c2(ut, ut, near_bound_tol)
    inf, inf_u = (tr["H_s_norm"] < hs_edge).to_numpy(), (ut["H_s_norm"] < hs_edge).to_numpy()
    mean = lambda v: float(np.mean(v)) if len(v) else float("nan")  # noqa: E731
    gap_t, gap_n = mean(tr["gap_norm"].to_numpy()[inf]), mean(nulls["gap_norm"].to_numpy()[inf])
    gap_u = mean(ut["gap_norm"].to_numpy()[inf_u])
    peak_t, peak_n, peak_u = float(tr["H_K_norm"].max()), float(nulls["H_K_norm"].max()), float(ut["H_K_norm"].max())
    null_mu = nulls.loc[nulls["mu_fitted"], "mu"]
    null_zipf = bool(((null_mu - 1).abs() < zipf_tol).any())
    vs = {
        "C1": {"peak_H_K_norm": peak_t, "null_peak_H_K_norm": peak_n, "untrained_peak_H_K_norm": peak_u,
               "holds": bool(peak_t > peak_n + margin_relevance),
               "beats_untrained": bool(peak_t > peak_u + margin_relevance),
               "untrained_holds_as_stated": c1_u["holds"], "untrained_relevance_peak_units": c1_u["relevance_peak_units"],
               "rule": f"relevance peak above the matched random states' by more than {margin_relevance} (normalised)"},
        "C2": {"n_informative_layers": int(inf.sum()), "mean_gap_norm_trained": gap_t, "mean_gap_norm_null": gap_n,
               "n_informative_layers_untrained": int(inf_u.sum()), "mean_gap_norm_untrained": gap_u,
               "holds": bool(inf.any() and gap_t < gap_n - margin_gap),
               "beats_untrained": bool(inf.any() and gap_t < gap_u - margin_gap),
               "untrained_holds_as_stated": c2_u["holds"],
               "rule": f"informative layers (H[s]/log M < {hs_edge}): mean normalised distance below the bound "
                       f"smaller than the matched random states' by more than {margin_gap}"},
        "C3": {"null_mu_per_layer": {int(d): (None if not f else round(float(m), 6))
                                     for d, m, f in zip(nulls["depth"], nulls["mu"], nulls["mu_fitted"])},
               "null_has_zipf_layer": null_zipf, "untrained_zipf_layer_units": c3_u.get("zipf_layer_units"),
               "untrained_zipf_layer_mu": c3_u.get("zipf_layer_mu"),
               "holds": bool(c3["holds"] and not null_zipf), "beats_untrained": bool(c3["holds"] and not c3_u["holds"]),
               "untrained_holds_as_stated": c3_u["holds"],
               "rule": f"a Zipf layer (|mu - 1| < {zipf_tol}) in the trained network and none in the matched random states"},
    }
    return {"C1": {**c1, "vs_null": vs["C1"]}, "C2": {**c2, "vs_null": vs["C2"]}, "C3": {**c3, "vs_null": vs["C3"]}}


def train_network(kind: str, splits: dict, *, epochs: int, checkpoints, lr: float = 1e-3, batch_size: int = 100,
                  shift: int = 0, seed: int = 0, threads: int | None = 1, progress: bool | None = None) -> BP.TrainedRun:
    """``kind``: "classifier" (tanh, Xavier; cosine schedule, ``shift``), "autoencoder" (tanh, Xavier;
    cosine schedule) or "sigmoid-classifier" (sigmoid, PyTorch's default init, constant rate, no shift).

    ``progress``: a tqdm.auto bar over the epochs (None: ``rr_utils.progress.show_progress``)."""
    from tqdm.auto import tqdm

    from rr_utils.progress import show_progress

    if kind not in ("classifier", "autoencoder", "sigmoid-classifier"):
        raise ValueError(f"kind: expected 'classifier', 'autoencoder' or 'sigmoid-classifier', got {kind!r}")
    bar = tqdm(total=epochs, desc=f"{splits.get('dataset', '')} {kind}", disable=not show_progress(progress),
               leave=False)
    common = dict(x_test=splits["x_test"], epochs=epochs, checkpoints=checkpoints, lr=lr, batch_size=batch_size,
                  seed=seed, threads=threads, progress=lambda h: bar.update(1) if h["epoch"] else None)
    try:
        if kind == "classifier":
            return BP.train(BP.mlp(seed=seed), splits["x"], splits["y"], y_test=splits["y_test"], shift=shift, **common)
        if kind == "sigmoid-classifier":
            return BP.train(BP.mlp(activation="sigmoid", init="default", seed=seed), splits["x"], splits["y"],
                            y_test=splits["y_test"], cosine=False, **common)
        return BP.train(BP.autoencoder(seed=seed), splits["x"], **common)
    finally:
        bar.close()

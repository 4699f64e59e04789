"""Glue for notebook 09: networks trained by backpropagation, read like the DBNs.

Everything here is *our* design; the paper studies DBNs only. The networks
(``rr_utils.backprop``) are trained on the first ``M`` = 8,000 training images
of a dataset (the DBN notebooks' M), their hidden layers are binarised by sign
(tanh units) and counted on those same M images at each checkpoint
(``rr_utils.probe``), and the claims are tested by ``rr_utils.claims.layer_claims``,
the rules and references of the DBN notebooks (04, 05, 08): as stated, and
against random states matched to each layer's width and resolution, random
stacks of the same widths and the same network untrained (epoch 0).

A network is analysed only if it has learned (``gate``): its test accuracy
(classifier) or reconstruction error (autoencoder) must reach a level stated
before its layers are read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from rr_utils import backprop as BP
from rr_utils import claims as C
from rr_utils import probe as PR
from rr_utils.claims import nulls as N
from rr_utils.data import load_dataset

__all__ = ["load_splits", "train_network", "linear_baseline", "pca_baseline", "gate", "trajectory", "null_table", "claims",
           "verdict_row", "M_TRAIN", "QUICK_M"]

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
    and the state counts of every layer at the first and the last checkpoint ({epoch: [counts per layer]})."""
    layers = BP.hidden_layers(run.model)
    epochs = sorted(run.checkpoints) if epochs is None else list(epochs)
    frames = []
    for e in epochs:
        df = PR.layer_report(run.at(e), x, layers=layers, device=device)
        df.insert(0, "epoch", e)
        df.insert(1, "depth", np.arange(1, len(layers) + 1))
        frames.append(df.rename(columns={"width": "units"}))
    counts = {e: list(PR.layer_counts(run.at(e), x, layers=layers, device=device).values())
              for e in sorted({epochs[0], epochs[-1]})}
    return pd.concat(frames, ignore_index=True), counts


def null_table(counts, widths, seed: int = 0) -> pd.DataFrame:
    """Per layer: one draw of random states of the same width and M with the layer's resolution
    (``claims.nulls.matched_random``), its distance below the bound and its fitted mu (for the figures;
    the verdicts use ``claims``)."""
    rows = []
    for depth, (c, w) in enumerate(zip(counts, widths), start=1):
        n = N.matched_random(c, int(w), n_draws=1, seed=seed + depth, keep_counts=True)
        d = n["draws"][0]
        fit = PR.report_from_counts({"null": d["counts"]}).iloc[0]
        rows.append(dict(depth=depth, units=int(w), p=d["p"], matched=d["matched"], H_s_norm=d["H_s_norm"],
                         H_K_norm=d["H_K_norm"], gap_norm=d["below_bound_norm"], mu=fit["mu"], mu_err=fit["mu_err"],
                         mu_fitted=bool(fit["mu_fitted"])))
    return pd.DataFrame(rows)


def claims(counts, untrained_counts, widths, seed: int = 0, n_draws: int = 5, n_boot: int = 0,
           n_gof: int = 100) -> dict:
    """C1-C3 of a trained network by ``claims.layer_claims`` (the untrained network as reference b),
    each record with ``untrained``: the same rule as stated on the untrained network itself."""
    trained = C.layer_claims(counts, widths, seed=seed, untrained_counts=untrained_counts, n_draws=n_draws,
                             n_boot=n_boot, n_gof=n_gof)
    untrained = C.layer_claims(untrained_counts, widths, seed=seed, n_draws=1, n_boot=0, n_gof=10)
    return {cid: {**r, "untrained": {"holds_as_stated": untrained[cid]["holds_as_stated"],
                                     "as_stated": untrained[cid]["as_stated"]}} for cid, r in trained.items()}


def verdict_row(network: str, v: dict) -> dict:
    """The numbers behind one network's verdicts, flat (the README and the summary table read them)."""
    c1, c2, c3 = v["C1"], v["C2"], v["C3"]
    u2, u3 = c2["untrained"]["as_stated"], c3["untrained"]["as_stated"]
    return {"network": network,
            "C1_as_stated": c1["holds_as_stated"], "C1_vs_null": c1["holds_vs_null"],
            "C1_untrained_as_stated": c1["untrained"]["holds_as_stated"],
            "C1_failed_references": sorted(k for k, ok in c1["vs_null"].get("checks", {}).items() if not ok),
            "C1_beats_matched_random": c1["vs_null"].get("checks", {}).get("a"),
            "C1_beats_untrained": c1["vs_null"].get("checks", {}).get("b"),
            "C1_beats_random_stacks": all(ok for k, ok in c1["vs_null"].get("checks", {}).items() if k.startswith("c")),
            "C1_excess_over_random_stacks": c1["vs_null"].get("excess_over_noise_stacks"),
            "C1_excess_over_matched_random": c1["vs_null"].get("excess_over_matched_random"),
            "relevance_peak_units": c1["as_stated"]["relevance_peak_units"],
            "relevance_peak_H_K_norm": c1["as_stated"]["relevance_peak_H_K_norm"],
            "untrained_relevance_peak_units": c1["untrained"]["as_stated"]["relevance_peak_units"],
            "C2_as_stated": c2["holds_as_stated"], "C2_vs_null": c2["holds_vs_null"],
            "C2_untrained_as_stated": c2["untrained"]["holds_as_stated"],
            "C2_failed_references": sorted(k for k, ok in c2["vs_null"].get("checks", {}).items() if not ok),
            "C2_beats_matched_random": c2["vs_null"].get("checks", {}).get("a"),
            "C2_beats_untrained": c2["vs_null"].get("checks", {}).get("b"),
            "mean_below_bound_norm": c2["as_stated"]["mean_below_bound_norm"],
            "max_below_bound_norm": c2["as_stated"]["max_below_bound_norm"],
            "untrained_mean_below_bound_norm": u2["mean_below_bound_norm"],
            "n_informative": c2["vs_null"].get("n_informative"),
            "informative_mean_below_bound_norm": c2["vs_null"].get("mean_below_bound_norm_informative"),
            "matched_random_mean_below_bound_norm": c2["vs_null"].get("matched_random_mean_below_bound_norm_informative"),
            "advantage_over_untrained": c2["vs_null"].get("mean_advantage_over_untrained"),
            "C3_as_stated": c3["holds_as_stated"], "C3_vs_null": c3["holds_vs_null"],
            "C3_untrained_as_stated": c3["untrained"]["holds_as_stated"],
            "C3_failed_checks": sorted(k for k, ok in c3["vs_null"].get("checks", {}).items() if not ok),
            "C3_gof_ok": c3["vs_null"].get("checks", {}).get("gof"), "C3_lr_ok": c3["vs_null"].get("checks", {}).get("lr"),
            "C3_beats_matched_random": c3["vs_null"].get("checks", {}).get("a"),
            "zipf_layer_units": c3["as_stated"].get("zipf_layer_units"),
            "zipf_layer_mu": c3["as_stated"].get("zipf_layer_mu"),
            "zipf_gof_p": (c3["vs_null"].get("zipf_layer") or {}).get("gof_p"),
            "untrained_zipf_layer_units": u3.get("zipf_layer_units")}


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

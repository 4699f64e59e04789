"""Glue for notebook 09: networks trained by backpropagation, read like the DBNs.

Everything here is *our* design; the paper studies DBNs only. The networks
(``rr_utils.backprop``) are trained on the first ``M`` = 8,000 training images
of a dataset (the DBN notebooks' M), their hidden layers are binarised by sign
(tanh units) and counted on those same M images at each checkpoint
(``rr_utils.probe``), and the claims are tested by ``rr_utils.claims.layers.layer_claims``,
the rules and references of the DBN notebooks (04, 05, 08): as stated, and
against untrained networks of the same architecture (new initialisations, read
by sign like the trained one) and random projections of the same images, each
layer read at the trained layer's resolution (``untrained_factory``).

A network is analysed only if it has learned (``gate``): its test accuracy
(classifier) or reconstruction error (autoencoder) must reach a level stated
before its layers are read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from rr_utils import backprop as BP
from rr_utils import probe as PR
from rr_utils.claims import layers as CL
from rr_utils.claims import nulls as N
from rr_utils.data import load_dataset

__all__ = ["load_splits", "train_network", "linear_baseline", "pca_baseline", "gate", "trajectory", "null_table", "claims",
           "verdict_row", "layer_values", "untrained_factory", "M_TRAIN", "QUICK_M"]

M_TRAIN = 8_000  # as the DBN notebooks (embedded MNIST train split); the first 8,000 of Fashion-MNIST's 60,000
QUICK_M = 1_000


def load_splits(dataset: str, quick: bool = False, m_train: int = M_TRAIN) -> dict:
    """{'x', 'y' (the first m_train training images), 'x_test', 'y_test' (the whole test split), 'source'}.

    quick: the first ``QUICK_M`` training and test images (only those are read: without the full
    Fashion-MNIST they come from the committed quick subset, the same rows).

    Fashion-MNIST that is not installed is an error that says how to install it (quick mode excepted).
    """
    m = QUICK_M if quick else m_train
    n_test = QUICK_M if quick else None
    try:
        tr = load_dataset(dataset, "train", verbose=False, rows=m)
        te = load_dataset(dataset, "test", verbose=False, rows=n_test)
    except FileNotFoundError as exc:
        if dataset != "fashion-mnist":
            raise
        raise FileNotFoundError(
            f"Fashion-MNIST is missing, and notebook 09 needs it: install the Debian package "
            f"dataset-fashion-mnist (`make data` does it: apt-get install -y dataset-fashion-mnist) or put "
            f"its four IDX files in data/raw/fashion-mnist/ (scripts/download_mnist.py --dataset fashion-mnist). "
            f"Searched: {exc}") from None
    if len(tr) < m:
        raise ValueError(f"{dataset}: only {len(tr)} training images, need {m}")
    return {"dataset": dataset, "x": tr.images, "y": tr.labels, "x_test": te.images,
            "y_test": te.labels, "source": tr.source, "M": m}


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


@torch.no_grad()
def layer_values(model, x, layers=None, batch_size: int = 1024) -> list[np.ndarray]:
    """The outputs of the hidden activation modules (``backprop.hidden_layers``) on x, first layer first
    (float32 numpy, one row per input): what ``probe`` binarises, before binarising."""
    layers = BP.hidden_layers(model) if layers is None else list(layers)
    modules = dict(model.named_modules())
    outs = {n: [] for n in layers}
    hooks = [modules[n].register_forward_hook(
        lambda m, i, o, n=n: outs[n].append(o.detach().float().cpu().reshape(o.shape[0], -1).numpy())) for n in layers]
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    try:
        for s in range(0, len(x), batch_size):
            model(torch.as_tensor(np.asarray(x[s:s + batch_size]), dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [np.concatenate(outs[n]) for n in layers]


def untrained_factory(kind: str, x, seed: int = 0, **build_kw):
    """``untrained(draw)`` for ``claims.layers.layer_claims``: the hidden-layer outputs on x of an untrained network
    of ``kind`` ("classifier" or "autoencoder", as ``train_network`` builds them; ``build_kw`` such as
    ``widths`` go to ``backprop.mlp`` / ``backprop.autoencoder``) with initialisation seed derived from
    (seed, draw), never the trained network's own."""
    if kind not in ("classifier", "autoencoder"):
        raise ValueError(f"kind: expected 'classifier' or 'autoencoder', got {kind!r}")
    build = BP.mlp if kind == "classifier" else BP.autoencoder

    def untrained(draw: int) -> list[np.ndarray]:
        s = int(np.random.SeedSequence([int(seed), 0x5EED, int(draw)]).generate_state(1)[0])
        return layer_values(build(seed=s, **build_kw), x)

    return untrained


def claims(counts, untrained_counts, widths, *, untrained=None, inputs=None, seed: int = 0, n_draws: int = 5,
           n_boot: int = 0, n_gof: int = 100, n_untrained: int = 20, n_projections: int = 20) -> dict:
    """C1-C3 of a trained network by ``claims.layers.layer_claims``, against ``untrained`` (``untrained_factory``; tanh
    units read by sign) and random projections of ``inputs``; each record also has ``untrained``: the rule as
    stated on this network's own initialisation (``untrained_counts``, epoch 0)."""
    trained = CL.layer_claims(counts, widths, seed=seed, untrained=untrained, untrained_threshold=0.0, inputs=inputs,
                              n_untrained=n_untrained, n_projections=n_projections, n_draws=n_draws, n_boot=n_boot,
                              n_gof=n_gof)
    own = CL.layer_claims(untrained_counts, widths, seed=seed, n_draws=1, n_boot=0, n_gof=10)
    return {cid: {**r, "untrained": {"holds_as_stated": own[cid]["holds_as_stated"],
                                     "as_stated": own[cid]["as_stated"]}} for cid, r in trained.items()}


def verdict_row(network: str, v: dict) -> dict:
    """The numbers behind one network's verdicts, flat (the README and the summary table read them)."""
    c1, c2, c3 = v["C1"], v["C2"], v["C3"]
    u2 = c2["untrained"]["as_stated"]
    row = {"network": network,
           "relevance_peak_units": c1["as_stated"]["relevance_peak_units"],
           "relevance_peak_H_K_norm": c1["as_stated"]["relevance_peak_H_K_norm"],
           "untrained_relevance_peak_units": c1["untrained"]["as_stated"]["relevance_peak_units"],
           "mean_below_bound_norm": c2["as_stated"]["mean_below_bound_norm"],
           "untrained_mean_below_bound_norm": u2["mean_below_bound_norm"],
           "n_informative": c2["vs_null"].get("n_informative"),
           "informative_mean_below_bound_norm": c2["vs_null"].get("mean_below_bound_norm_informative"),
           "zipf_layer_units": c3["as_stated"].get("zipf_layer_units"),
           "zipf_layer_mu": c3["as_stated"].get("zipf_layer_mu"),
           "tested_layer_units": (c3["vs_null"].get("zipf_layer") or {}).get("units"),
           "zipf_gof_p": (c3["vs_null"].get("zipf_layer") or {}).get("gof_p")}
    for cid, r in (("C1", c1), ("C2", c2), ("C3", c3)):
        row[f"{cid}_as_stated"] = r["holds_as_stated"]
        row[f"{cid}_vs_references"] = r["vs_null"]["decision"]
        row[f"{cid}_untrained_as_stated"] = r["untrained"]["holds_as_stated"]
        for ref, c in r["vs_null"].get("comparisons", {}).items():
            row[f"{cid}_{ref}_effect"] = c["mean_effect"]
            row[f"{cid}_{ref}_effect_lo"] = c["effect_lo"]
            row[f"{cid}_{ref}_effect_hi"] = c["effect_hi"]
            row[f"{cid}_{ref}_decision"] = c["decision"]
    return row


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

"""The GPU path, measured on a CUDA machine: writes ``results/gpu.json`` (its one writer).

    python -m benchmarks.gpu [--out FILE] [--skip STEP ...] [--network-deadline S] [--network-out DIR] [--smoke]

1. **Graphs are bitwise eager.**  A small DBN (MNIST subset) trained with CUDA
   graphs (``rr_utils.models.cuda_graphs``) against the same run with
   ``RR_CUDA_GRAPHS=0``: weights, history, and the final checkpoints' velocities,
   particles and generator states, compared bit for bit (``bitwise_identical``).  Also recorded:
   the largest |difference| of the weights from the CPU run (not expected to be
   0: other kernels).
2. **Time per mini-batch of each layer shape** (the 12 layers of the authors'
   network, 784 -> ... -> 2) on the first ``--layer-rows`` images: an eager epoch
   against a graph replay, each the best of a few, and the capture's cost.
3. **One full-size network**: Fashion-MNIST, 60,000 training images, seed 0,
   notebook 03's configuration (12 layers x 200 epochs, monitoring on the test
   set), trained with graphs: wall time, time per layer and per epoch.  With
   ``--network-out`` its history (and, when complete, its final checkpoints) is
   written there.  ``--network-deadline`` stops it early; the record then holds
   the epochs trained and an estimate of the whole network from step 2.

4. **Seeds in one batch** (issue 22, ``seeds``): the 784 -> 500 layer on the
   ``--layer-rows`` images, S = 1, 2, 5, 10 seeds trained in one stacked batch
   (``rr_utils.models.batched``: batched products, one CUDA graph per epoch for
   all seeds) against the S seeds one after another (each its own graph): time
   per epoch and per mini-batch, per-seed throughput ratio, and whether seed 0
   of the batch is bitwise seed 0 alone (if so, CUDA batches could share the
   alone keys; until measured they are keyed apart).
5. **Five full-size networks in one batch** (``seeds_network``): notebook 03's
   configuration on Fashion-MNIST (60,000 images), seeds 0-4, ``train_dbns``:
   wall time (against five times step 3's), with ``--seeds-deadline``.

``--smoke`` (for the tests, any machine): tiny sizes; without CUDA the graph
steps are recorded as not run, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from rr_utils import experiments as X
from rr_utils import models as MD
from rr_utils.io import atomic_write_json
from rr_utils.models import RBM, PCDState, RBMConfig
from rr_utils.models.checkpoints import final_payloads, payload_tensors
from rr_utils.models.batched import SeedBatch, seed_epoch_runner
from rr_utils.models.batched_training import train_dbns
from rr_utils.models.cuda_graphs import GraphedEpochs, epoch_runner
from rr_utils.models.rbm import _deterministic, _generator

ROOT = Path(__file__).resolve().parents[1]


def _environment(device: torch.device) -> dict:
    env = {"torch": torch.__version__, "python": platform.python_version(), "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   multiprocessors=p.multi_processor_count)
    return env


def bitwise_check(x: np.ndarray, smoke: bool) -> dict:
    """Step 1: graphs against eager on CUDA, and the distance of both to the CPU run."""
    sizes, epochs = ((20, 5), 3) if smoke else ((500, 250, 30, 3), 4)
    cfg = MD.DBNConfig(hidden_sizes=sizes, epochs=epochs, checkpoint_epochs=(0, epochs))
    out = {"hidden_sizes": list(sizes), "epochs": epochs, "rows": int(x.shape[0])}
    if not torch.cuda.is_available():
        out["run"] = False
        out["why_not"] = "no CUDA device on this machine"
        return out
    cpu = MD.train_dbn(_with_device(cfg, "cpu"), x, cache_dir=tempfile.mkdtemp(), progress=False, test_data=x[:500])
    runs = {}
    for name, on in (("graphs", True), ("eager", False)):
        with mock.patch.dict(os.environ, {"RR_CUDA_GRAPHS": "1" if on else "0"}):  # read per layer
            net = MD.train_dbn(_with_device(cfg, "cuda"), x, cache_dir=tempfile.mkdtemp(), progress=False,
                               test_data=x[:500])
        meta = json.loads((net.entry.folder / "meta.json").read_text())
        runs[name] = (net, final_payloads(net), meta["cuda_graphs"])
    (g, g_ck, g_flag), (e, e_ck, e_flag) = runs["graphs"], runs["eager"]
    differing = []
    for layer, (a, b) in enumerate(zip(g_ck, e_ck)):
        ta, tb = dict(payload_tensors(a)), dict(payload_tensors(b))
        if ta.keys() != tb.keys():
            differing.append(f"layer {layer}: payload fields differ")
        differing += [f"layer {layer}{k}" for k in ta if k in tb and not torch.equal(ta[k], tb[k])]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in g.history]
    strip_e = [{k: v for k, v in r.items() if k != "seconds"} for r in e.history]
    out.update(run=True, graphs_used=bool(g_flag), eager_used_graphs=bool(e_flag),
               bitwise_identical=not differing and strip == strip_e, differing=differing[:20],
               history_identical=strip == strip_e,
               max_abs_weight_diff_vs_cpu=max(float((r.W.cpu() - c.W).abs().max()) for r, c in zip(g.rbms, cpu.rbms)))
    return out


def _with_device(cfg, device: str):
    import dataclasses
    return dataclasses.replace(cfg, device=device)


def _time_epochs(fit, data, epochs: range, device) -> list[float]:
    times = []
    for epoch in epochs:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fit(data, epoch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def layer_timings(x: np.ndarray, smoke: bool, device: torch.device) -> list[dict]:
    """Step 2: time per mini-batch of each layer shape of the authors' network, eager against graph
    replays, on ``x``'s rows (a slice of the data: the time is linear in the mini-batches)."""
    cfg = RBMConfig(device=device.type)
    sizes = (x.shape[1],) + tuple(MD.DEFAULT_HIDDEN_SIZES)
    if smoke:
        sizes = sizes[:1] + sizes[-3:]
    rows = []
    for n_in, n_hid in zip(sizes[:-1], sizes[1:]):
        g = _generator(device, n_in * 1000 + n_hid)
        data = (torch.as_tensor(x, device=device) if n_in == x.shape[1]
                else torch.rand(x.shape[0], n_in, generator=g, device=device))
        mb = x.shape[0] // cfg.batch_size
        row = {"n_visible": n_in, "n_hidden": n_hid, "minibatches": mb}
        with _deterministic(device):
            rbm = RBM.initialise(n_in, n_hid, g, device=device)
            state = PCDState.initialise(rbm, cfg, g)
            eager = _time_epochs(lambda d, e: rbm.fit_epoch(d, e, cfg, state), data, range(0, 3), device)
            row["eager_us_per_minibatch"] = 1e6 * min(eager[1:]) / mb
            if device.type == "cuda":
                graphed = GraphedEpochs(rbm, cfg, state)
                t = _time_epochs(graphed.fit_epoch, data, range(3, 7), device)
                row["capture_s"] = t[0] - min(eager[1:])  # the capture, beyond its eager epoch
                row["graph_us_per_minibatch"] = 1e6 * min(t[1:]) / mb
                row["speedup"] = row["eager_us_per_minibatch"] / row["graph_us_per_minibatch"]
        rows.append(row)
        print(f"  {n_in:>4} -> {n_hid:<4} eager {row['eager_us_per_minibatch']:.0f} us/mini-batch"
              + (f"  graph {row['graph_us_per_minibatch']:.0f} us ({row['speedup']:.1f}x)"
                 if "speedup" in row else ""), flush=True)
    return rows


class _Deadline(Exception):
    pass


def network_estimate(layers: list[dict], minibatches: int, epochs: int) -> float:
    """Seconds for a network from step 2's per-layer times: per layer one eager epoch, the capture,
    then ``epochs - 1`` graph replays (monitoring not included)."""
    total = 0.0
    for r in layers:
        per = r.get("graph_us_per_minibatch", r["eager_us_per_minibatch"]) * 1e-6 * minibatches
        total += r["eager_us_per_minibatch"] * 1e-6 * minibatches + r.get("capture_s", 0.0) + (epochs - 1) * per
    return total


def full_network(smoke: bool, network_out: Path | None, deadline_s: float | None, layers: list | None) -> dict:
    """Step 3: notebook 03's network on Fashion-MNIST at 60,000 rows, seed 0, trained with graphs.
    ``deadline_s``: stop after that long and record what was trained (and, with step 2's per-layer
    times, an estimate of the whole network)."""
    splits = X.load_splits("fashion-mnist", quick=smoke)
    cfg = X.dbn_config(quick=smoke, seed=0)
    cache = Path(tempfile.mkdtemp())
    history = []
    stop = None if deadline_s is None else time.perf_counter() + deadline_s
    progress = open(network_out / "history.jsonl", "w") if network_out else None

    def log(rec):
        history.append(rec)
        if progress:
            progress.write(json.dumps(rec) + "\n")
            progress.flush()
        if stop is not None and time.perf_counter() > stop:
            raise _Deadline

    t0 = time.perf_counter()
    net = None
    try:
        net = MD.train_dbn(cfg, splits["train"], cache_dir=cache, progress=False, test_data=splits["test"], log=log)
    except _Deadline:
        pass
    finally:
        if progress:
            progress.close()
    wall = time.perf_counter() - t0
    per_layer = {}
    for rec in history:
        if rec["epoch"] > 0:
            per_layer.setdefault(rec["layer"], []).append(rec["seconds"])
    meta = json.loads(next(cache.glob("dbn-*/meta.json")).read_text())
    out = {"dataset": "fashion-mnist", "rows": int(splits["train"].shape[0]), "seed": 0,
           "hidden_sizes": list(cfg.hidden_sizes), "epochs": cfg.epochs, "device_type": meta["device_type"],
           "cuda_graphs": meta["cuda_graphs"], "complete": net is not None, "wall_s": wall,
           "epochs_trained": [len(per_layer[k]) for k in sorted(per_layer)],
           "layer_s": [sum(per_layer[k]) for k in sorted(per_layer)],
           "first_epoch_s": [per_layer[k][0] for k in sorted(per_layer)],
           "epoch_s_median": [float(np.median(per_layer[k][1:] or per_layer[k])) for k in sorted(per_layer)],
           "cache_key": meta["key"]}
    if net is not None:
        out["train_pll_final"] = [r["train_pll"] for r in net.history if r["epoch"] == cfg.epochs]
        out["test_pll_final"] = [r["test_pll"] for r in net.history if r["epoch"] == cfg.epochs]
        if network_out is not None:
            final = cfg.checkpoint_schedule()[-1]
            for p in sorted(net.folder.glob(f"layer*_epoch{final:04d}.pt")) + [net.folder / "meta.json"]:
                shutil.copy2(p, network_out / p.name)
    elif layers:
        mb = splits["train"].shape[0] // cfg.batch_size
        out["estimate_s"] = network_estimate(layers, mb, cfg.epochs)
        done = [k for k in sorted(per_layer) if len(per_layer[k]) == cfg.epochs]
        out["estimate_s_of_measured_layers"] = network_estimate([layers[k] for k in done], mb, cfg.epochs)
        out["measured_s_of_measured_layers"] = sum(out["layer_s"][k] for k in done)
    return out


def seed_batches(x: np.ndarray, smoke: bool, device: torch.device) -> list[dict]:
    """Step 4: S seeds of the 784 -> 500 layer in one stacked batch (one graph per epoch on CUDA) against the S
    seeds one after another (each replaying its own graph): best epoch of a few, after the capture."""
    cfg = RBMConfig(device=device.type)
    x = x[:300] if smoke else x
    data = torch.as_tensor(x, device=device)
    mb = x.shape[0] // cfg.batch_size
    rows = []
    for S in ((1, 2) if smoke else (1, 2, 5, 10)):
        def fresh(s):
            g = _generator(device, 1000 + s)
            rbm = RBM.initialise(x.shape[1], 500, g, device=device)
            return rbm, PCDState.initialise(rbm, cfg, g)
        with _deterministic(device):
            alone = [fresh(s) for s in range(S)]
            fits = [epoch_runner(rbm, cfg, st) for rbm, st in alone]
            batch = SeedBatch(*zip(*(fresh(s) for s in range(S))), stacked=True)
            fit_b = seed_epoch_runner(batch, cfg)
            n_ep = 2 if smoke else 5  # epoch 0 eager, 1 captured, then replays
            seq = [sum(ts) for ts in zip(*(_time_epochs(f, data, range(n_ep), device) for f in fits))]
            bat = _time_epochs(fit_b, data, range(n_ep), device)
        t_seq, t_bat = min(seq[2:] or seq), min(bat[2:] or bat)
        rows.append({"seeds": S, "minibatches": mb, "sequential_epoch_s": t_seq, "batched_epoch_s": t_bat,
                     "sequential_us_per_minibatch": 1e6 * t_seq / mb, "batched_us_per_minibatch": 1e6 * t_bat / mb,
                     "per_seed_throughput_ratio": t_seq / t_bat,
                     "seed0_bitwise_alone": bool(torch.equal(batch.seed(0)[0].W, alone[0][0].W)),
                     "seed0_max_abs_diff_W": float((batch.seed(0)[0].W - alone[0][0].W).abs().max())})
        print(f"  S={S:>2}: batched {t_bat:.3f} s, sequential {t_seq:.3f} s per epoch, "
              f"x{t_seq / t_bat:.2f} per seed", flush=True)
    return rows


def seeds_network(smoke: bool, deadline_s: float | None) -> dict:
    """Step 5: notebook 03's network on Fashion-MNIST at 60,000 rows, seeds 0-4 in one batch (``train_dbns``);
    ``deadline_s`` stops it early (the record then holds the epochs trained)."""
    import dataclasses

    splits = X.load_splits("fashion-mnist", quick=smoke)
    base = X.dbn_config(quick=smoke, seed=0)
    if smoke:  # tiny: proves the step runs
        base = dataclasses.replace(base, hidden_sizes=(30, 10))
        splits = {"train": splits["train"][:300], "test": splits["test"][:100]}
    configs = [dataclasses.replace(base, seed=s) for s in range(5)]
    stop = None if deadline_s is None else time.perf_counter() + deadline_s
    epochs = []

    def log(rec):
        if rec["epoch"] > 0:
            epochs.append((rec["layer"], rec["seed"], rec["seconds"]))
        if stop is not None and time.perf_counter() > stop:
            raise _Deadline

    t0, nets = time.perf_counter(), None
    try:
        nets = train_dbns(configs, splits["train"], cache_dir=Path(tempfile.mkdtemp()), test_data=splits["test"],
                          log=log)
    except _Deadline:
        pass
    return {"dataset": "fashion-mnist", "rows": int(splits["train"].shape[0]), "seeds": [c.seed for c in configs],
            "hidden_sizes": list(base.hidden_sizes), "epochs": base.epochs, "complete": nets is not None,
            "wall_s": time.perf_counter() - t0, "seed_epochs_trained": len(epochs),
            "keys": None if nets is None else [n.key for n in nets]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "gpu.json")
    ap.add_argument("--network-out", type=Path, default=None, help="copy the full network's final checkpoints here")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (tests)")
    ap.add_argument("--network-deadline", type=float, default=None,
                    help="seconds: stop the full network then, record the epochs trained and an estimate")
    ap.add_argument("--layer-rows", type=int, default=10_000, help="rows of the per-layer timings")
    ap.add_argument("--seeds-deadline", type=float, default=None,
                    help="seconds: stop the five-seed full-size batch then, record the epochs trained")
    ap.add_argument("--skip", nargs="*", default=[], choices=["bitwise", "layers", "network", "seeds",
                                                              "seeds_network"],
                    help="steps not to run now (their earlier results in --out are kept)")
    args = ap.parse_args(argv)
    device = MD.resolve_device("auto")
    if device.type != "cuda" and not args.smoke:
        print("benchmarks.gpu: no CUDA device here; this check runs where a GPU is lent "
              "(--smoke runs its CPU parts)", file=sys.stderr)
        return 2
    if args.network_out is not None:
        args.network_out.mkdir(parents=True, exist_ok=True)
    doc = {"what": "the GPU path: graphs vs eager bitwise, epoch time per layer shape, one full-size network, "
                   "seeds in one batch (S = 1, 2, 5, 10; five full-size networks)",
           "smoke": args.smoke, "environment": _environment(device)}
    if args.skip and args.out.is_file():  # steps run in separate calls: keep the ones skipped now
        before = json.loads(args.out.read_text())
        doc.update({k: before[k] for k in args.skip if k in before})
    mnist = X.load_splits("mnist")["train"][: 500 if args.smoke else 4000]
    fashion = X.load_splits("fashion-mnist", quick=args.smoke)["train"]
    steps = [("bitwise", lambda: bitwise_check(mnist, args.smoke)),
             ("layers", lambda: layer_timings(fashion[:args.layer_rows], args.smoke, device)),
             ("network", lambda: full_network(args.smoke, args.network_out, args.network_deadline, doc.get("layers"))),
             ("seeds", lambda: seed_batches(fashion[:args.layer_rows], args.smoke, device)),
             ("seeds_network", lambda: seeds_network(args.smoke, args.seeds_deadline))]
    for name, step in steps:
        if name in args.skip:
            doc.setdefault(name, {"run": False, "why_not": "--skip"})
            continue
        print(f"[gpu] {name} ...", flush=True)
        t0 = time.perf_counter()
        doc[name] = step()
        print(f"[gpu] {name}: {time.perf_counter() - t0:.1f} s  {json.dumps(doc[name])[:600]}", flush=True)
        atomic_write_json(args.out, doc)  # each step's result is kept even if a later one dies
    return 0


if __name__ == "__main__":
    sys.exit(main())

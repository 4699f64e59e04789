"""``rr_utils.probe.layer_report`` over 60,000 inputs: streaming (forward hooks feeding
one ``StateCounter`` per layer, batches of 1,024) against the one-shot path a user
would write (one forward pass keeping every layer's full activation matrix, then
``state_counts`` on each), in subprocesses: peak memory above the process's
baseline (VmHWM, as ``benchmarks.counting``) and time.

Inputs: the Fashion-MNIST training images (60,000; Debian package
``dataset-fashion-mnist``), or, where that is not installed, 60,000 synthetic
images (uniform grey levels, said so in the table). Model: the DBN-width tanh
MLP of notebook 09 (``rr_utils.backprop.mlp``, Xavier initialisation, untrained:
its layers have more distinct states than trained ones, the hard case for
streaming). Both paths must give the same counts for every layer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np

try:
    from .common import Row, fmt_s
    from .counting import _reset_peak, _status_kib
except ImportError:  # run as a script
    from common import Row, fmt_s  # type: ignore
    from counting import _reset_peak, _status_kib  # type: ignore


def _inputs(M: int, smoke: bool):
    if not smoke:
        try:
            from rr_utils.data import load_dataset

            x = load_dataset("fashion-mnist", "train", verbose=False).images
            return x[:M], f"Fashion-MNIST train ({min(M, len(x)):,} images)"
        except FileNotFoundError:
            pass
    rng = np.random.default_rng(0)
    return rng.random((M, 784), dtype=np.float32), f"synthetic uniform images ({M:,})"


def mem_probe(mode: str, M: int, smoke: bool, batch: int = 1024) -> dict:
    import torch

    from rr_utils import backprop as BP
    from rr_utils import entropy as E
    from rr_utils import probe as PR

    torch.set_num_threads(1)
    x, source = _inputs(M, smoke)
    x = torch.from_numpy(np.ascontiguousarray(x))
    model = BP.mlp(seed=0).eval()
    layers = BP.hidden_layers(model)
    def stream():
        return PR.layer_counts(model, x, layers=layers, batch_size=batch, device="cpu")

    def oneshot():  # keep every layer's activation matrix, then count
        acts, mods = {}, dict(model.named_modules())
        hooks = [mods[n].register_forward_hook(lambda m, i, o, n=n: acts.__setitem__(n, o)) for n in layers]
        with torch.inference_mode():
            model(x)
        for h in hooks:
            h.remove()
        return {n: E.state_counts(acts.pop(n) > 0) for n in layers}

    fn = stream if mode == "stream" else oneshot
    reset = _reset_peak()
    base = _status_kib("VmRSS")
    t0 = time.perf_counter()
    counts = fn()
    times = [time.perf_counter() - t0]
    peak = _status_kib("VmHWM")
    for _ in range(2 if not smoke else 0):  # best of 3 for the time (the peak is the first run's)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    secs = min(times)
    digest = hashlib.sha256(b"".join(np.sort(c).tobytes() for c in counts.values())).hexdigest()
    return {"mode": mode, "M": int(len(x)), "source": source, "batch": batch if mode == "stream" else int(len(x)),
            "seconds": secs, "n_states": {n: int(c.size) for n, c in counts.items()}, "counts_sha": digest,
            "activation_mib": int(len(x)) * sum(int(m.out_features) for n, m in model.named_modules()
                                                if n.startswith("fc")) * 4 / 2 ** 20,
            "base_rss_mib": base / 1024, "peak_was_reset": reset,
            "extra_peak_mib": (peak - base) / 1024}


def _probe(mode: str, M: int, smoke: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = [sys.executable, "-m", "benchmarks.probe", "--mem-probe", mode, str(M)] + (["--smoke"] if smoke else [])
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(smoke: bool = False, log=print) -> tuple[list[Row], dict]:
    M = 3_000 if smoke else 60_000
    st, one = _probe("stream", M, smoke), _probe("oneshot", M, smoke)
    if st["counts_sha"] != one["counts_sha"]:
        raise AssertionError("layer_report's streaming counts differ from the one-shot path")
    size = f"M={st['M']:,}, 9 layers"
    mem_ratio = one["extra_peak_mib"] / max(st["extra_peak_mib"], 1e-9)
    note = (f"{st['source']}; untrained DBN-width tanh MLP (784-500-...-10); distinct states per layer "
            f"{list(st['n_states'].values())}; the one-shot path holds {one['activation_mib']:.0f} MiB of float32 "
            f"activations; memory above the process's baseline")
    rows = [
        Row("probe", "layer_report peak memory, one-shot / stream", size, f"{st['extra_peak_mib']:.0f} MiB",
            f"{one['extra_peak_mib']:.0f} MiB", mem_ratio, "stream < one-shot",
            bool(st["extra_peak_mib"] < one["extra_peak_mib"]), note=note, data={"stream": st, "oneshot": one}),
        Row("probe", "layer_report time, one-shot / stream", size, fmt_s(st["seconds"]), fmt_s(one["seconds"]),
            one["seconds"] / st["seconds"], "", None,
            note="ratio = one-shot time / streaming time (below 1: streaming is slower); best of 3, batches of "
                 "1,024, 1 thread",
            data={}),
    ]
    log(f"  probe {size}: stream {st['extra_peak_mib']:.0f} MiB {fmt_s(st['seconds'])}, "
        f"one-shot {one['extra_peak_mib']:.0f} MiB {fmt_s(one['seconds'])}")
    return rows, {"stream": st, "oneshot": one}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mem-probe", nargs=2, metavar=("MODE", "M"))
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    if a.mem_probe:
        print(json.dumps(mem_probe(a.mem_probe[0], int(a.mem_probe[1]), a.smoke)))

"""Seeds trained in one batch (rr_utils.models.batched, batched_training; issue 22).

On the CPU a seed trained in a batch is stored under the key of the seed trained alone, so it must be
bitwise that network: these tests pin it at the recipe's shapes (784 -> 500, mini-batches of 100,
4 chunks of 25 particles, the trainer's thread count), for one layer and for a stack, and check that
a seed's network does not depend on which seeds share its batch.
"""

import dataclasses

import numpy as np
import pytest
import torch

from rr_utils.data import load_mnist
from rr_utils.models import DBNConfig, RBM, PCDState, RBMConfig, cache_key, load_dbn, train_dbn
from rr_utils.models.batched import SeedBatch
from rr_utils.models.batched_training import SEED_BATCH_TAG, check_seed_batch, load_dbns, seed_batch_key, train_dbns
from rr_utils.models.checkpoints import final_payloads, payload_tensors
from rr_utils.models.rbm import _deterministic, _generator, _seed_for

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    x = load_mnist("train", verbose=False)[0][:300]  # 3 mini-batches of 100
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _fresh(seed, n_hid, cfg, n_vis=784):
    g = _generator(CPU, _seed_for(seed, 0))
    rbm = RBM.initialise(n_vis, n_hid, g, init=cfg.init, gain=cfg.init_gain, device=CPU)
    return rbm, PCDState.initialise(rbm, cfg, g)


def _alone(seed, x, n_hid, cfg, epochs):
    x = x.clone()  # a fresh tensor, as train_dbn's layer input
    rbm, state = _fresh(seed, n_hid, cfg, x.shape[1])
    with _deterministic(CPU):
        for e in range(epochs):
            rbm.fit_epoch(x, e, cfg, state)
    return rbm, state


def _batched(seeds, x, n_hid, cfg, epochs, stacked=False):
    n_vis = x[0].shape[-1] if isinstance(x, list) else x.shape[-1]
    batch = SeedBatch(*zip(*(_fresh(s, n_hid, cfg, n_vis) for s in seeds)), stacked=stacked)
    with _deterministic(CPU):
        for e in range(epochs):
            batch.fit_epoch(x, e, cfg)
    return batch.unstack()


def _assert_bitwise(a, b, what):
    (ra, sa), (rb, sb) = a, b
    pairs = {"W": (ra.W, rb.W), "vbias": (ra.vbias, rb.vbias), "hbias": (ra.hbias, rb.hbias),
             "particles": (sa.particles, sb.particles), "dW": (sa.velocity[0], sb.velocity[0]),
             "da": (sa.velocity[1], sb.velocity[1]), "db": (sa.velocity[2], sb.velocity[2]),
             "generator": (sa.generator.get_state(), sb.generator.get_state())}
    for name, (u, v) in pairs.items():
        assert torch.equal(u, v), f"{what}: {name} differs (max |diff| {(u.float() - v.float()).abs().max():.3g})"


@pytest.mark.parametrize("threads", [1, 2])
def test_a_batched_seed_is_bitwise_the_seed_alone_at_784_500(digits, threads):
    """The recipe's first layer, 2 epochs (momentum 0.5, 0.4) of 3 mini-batches, 1 and 2 torch threads."""
    cfg = RBMConfig()
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batched = _batched([0, 1, 2], digits, 500, cfg, 2)
        for s, got in zip([0, 1, 2], batched):
            _assert_bitwise(_alone(s, digits, 500, cfg, 2), got, f"seed {s}, {threads} thread(s)")
    finally:
        torch.set_num_threads(prev)


_SIZES = (500, 250, 120, 60, 30, 25, 20, 15, 10, 5, 3, 2)  # the authors' 12 layers (DEFAULT_HIDDEN_SIZES)
_DEEPER = sorted(set(zip(_SIZES, _SIZES[1:])) | {(50, 10), (50, 50)})  # + 07_baselines


@pytest.mark.parametrize("n_vis,n_hid", _DEEPER)
def test_bitwise_at_deeper_layer_shapes_with_one_input_per_seed(n_vis, n_hid):
    """Deeper layers, every layer shape of the workflow's architectures: each seed has its own input
    (S, rows, n_vis); small products (torch's naive baddbmm kernel) and widths that leave a scalar tail."""
    cfg = RBMConfig()
    gen = torch.Generator().manual_seed(7)
    xs = torch.rand(2, 200, n_vis, generator=gen)
    batched = _batched([3, 4], [xs[0].clone(), xs[1].clone()], n_hid, cfg, 2)
    for i, s in enumerate([3, 4]):
        _assert_bitwise(_alone(s, xs[i].contiguous(), n_hid, cfg, 2), batched[i], f"{n_vis}->{n_hid} seed {s}")


def test_a_seed_does_not_depend_on_its_batch_mates(digits):
    """Seed 1 with seed 0, with seeds 2 and 3, and first or last in its batch: the same network."""
    cfg = RBMConfig()
    x = digits[:200]
    ref = _batched([0, 1], x, 500, cfg, 1)[1]
    for seeds in ([1, 2, 3], [3, 2, 1]):
        got = _batched(seeds, x, 500, cfg, 1)[seeds.index(1)]
        _assert_bitwise(ref, got, f"seed 1 in batch {seeds}")
    other = _batched([0, 2], x, 500, cfg, 1)
    assert not torch.equal(ref[0].W, other[1][0].W)  # seeds differ from one another


def test_a_stack_of_seeds_as_input_is_copied_for_lockstep():
    """One (S, rows, n) tensor of inputs: each seed's slice is copied (a slice of a stack has another
    alignment than a tensor of its own, and MKL's bits depend on it: 50 -> 10 differs without the copy)."""
    cfg = RBMConfig()
    xs = torch.rand(2, 200, 50, generator=torch.Generator().manual_seed(7))
    batched = _batched([3, 4], xs, 10, cfg, 1)
    for i, s in enumerate([3, 4]):
        _assert_bitwise(_alone(s, xs[i], 10, cfg, 1), batched[i], f"seed {s}")


def _fresh64(seed, n_hid, cfg, n_vis=784):
    rbm, st = _fresh(seed, n_hid, cfg, n_vis)
    return (RBM(rbm.W.double(), rbm.vbias.double(), rbm.hbias.double()),
            PCDState(tuple(v.double() for v in st.velocity), st.particles.double(), st.generator))


def test_the_stacked_layout_is_the_same_update_and_independent_of_its_batch(digits):
    """The CUDA layout (batched products, one kernel per operation for every seed), run on the CPU in float64
    (so that rounding cannot flip a Bernoulli draw): the alone seed's update to rounding, the same draws in the
    same order, and a seed's result the same whichever seeds share its batch."""
    cfg = RBMConfig()
    x = digits[:200].double()

    def stacked(seeds):
        batch = SeedBatch(*zip(*(_fresh64(s, 500, cfg) for s in seeds)), stacked=True)
        with _deterministic(CPU):
            batch.fit_epoch(x, 0, cfg)
        return batch.unstack()

    got = stacked([0, 1])
    for s, (rbm, st) in zip((0, 1), got):
        ra, sa = _fresh64(s, 500, cfg)
        with _deterministic(CPU):
            ra.fit_epoch(x, 0, cfg, sa)
        torch.testing.assert_close(rbm.W, ra.W, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(st.particles, sa.particles, rtol=1e-9, atol=1e-12)
        assert torch.equal(st.generator.get_state(), sa.generator.get_state())  # the same draws, in order
    torch.testing.assert_close(stacked([2, 1, 3])[1][0].W, got[1][0].W, rtol=1e-9, atol=1e-12)


def test_benchmark_section_runs():
    """make bench's section batched, smoke sizes: every S reports a ratio, the lockstep batch bitwise alone."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import batched as bench

    rows, info = bench.run(smoke=True, log=lambda msg: None)
    assert [r.section for r in rows] == ["batched"] * len(info["by_seeds"])
    assert all(r.ratio > 0 for r in rows)
    assert all(v["lockstep_bitwise_alone"] for v in info["by_seeds"].values())


def test_train_dbns_stores_each_seed_under_its_alone_key_bitwise(digits, tmp_path):
    """A two-layer stack: batched (seeds 0, 1) and alone (seed 1) in separate caches give the same key,
    bitwise the same checkpoints (weights, velocities, particles, generator state) and the same history
    but for timings; the batch then finds a seed trained alone in its cache."""
    base = DBNConfig(hidden_sizes=(500, 30), epochs=2, checkpoint_epochs=(0, 1, 2), monitor_rows=50, device="cpu")
    configs = [dataclasses.replace(base, seed=s) for s in (0, 1)]
    x, xt = digits[:200], digits[200:]
    kw = dict(data_id="d", test_data=xt, test_id="t", num_threads=1)
    batched = train_dbns(configs, x, cache_dir=tmp_path / "batch", **kw)
    alone = train_dbn(configs[1], x, cache_dir=tmp_path / "alone", **kw)
    assert batched[1].key == alone.key == cache_key(configs[1], "d")
    for pa, pb in zip(final_payloads(alone), final_payloads(batched[1])):
        ta, tb = dict(payload_tensors(pa)), dict(payload_tensors(pb))
        assert ta.keys() == tb.keys()
        for name in ta:
            assert torch.equal(ta[name], tb[name]), name
        strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
        assert strip(pa["history"]) == strip(pb["history"])
    # the alone cache now holds seed 1: a batch of seeds 0 and 1 there trains seed 0 only and loads seed 1
    logged = []
    again = train_dbns(configs, x, cache_dir=tmp_path / "alone", log=logged.append, **kw)
    assert {r["seed"] for r in logged if r["epoch"] > 0} == {0}
    assert torch.equal(again[0].rbms[1].W, batched[0].rbms[1].W)
    assert torch.equal(load_dbn(configs[0], "d", cache_dir=tmp_path / "batch").rbms[0].W, batched[0].rbms[0].W)
    assert torch.equal(load_dbns(configs, "d", cache_dir=tmp_path / "batch")[1].rbms[1].W, alone.rbms[1].W)


def test_non_cpu_batches_are_keyed_apart():
    cfg = DBNConfig(hidden_sizes=(5,), device="cpu")
    assert seed_batch_key(cfg, "d", "cpu") == cache_key(cfg, "d", "cpu")
    meta = torch.device("meta")  # any device but the CPU: cuda on a machine that has one
    assert seed_batch_key(cfg, "d", meta) != cache_key(cfg, "d", meta)
    assert SEED_BATCH_TAG


def test_bad_batches_are_refused():
    base = DBNConfig(hidden_sizes=(5,))
    with pytest.raises(ValueError, match="at least one"):
        check_seed_batch([])
    with pytest.raises(ValueError, match="repeated seeds"):
        check_seed_batch([base, base])
    with pytest.raises(ValueError, match=r"differ in seed only.*epochs"):
        check_seed_batch([base, dataclasses.replace(base, seed=1, epochs=3)])
    with pytest.raises(ValueError, match="authors' recipe"):
        check_seed_batch([dataclasses.replace(base, recipe="classical")])
    with pytest.raises(ValueError, match="DBNConfig"):
        check_seed_batch([RBMConfig()])
    rbm, st = _fresh(0, 3, RBMConfig(), 5)
    rbm2, st2 = _fresh(1, 4, RBMConfig(), 5)
    with pytest.raises(ValueError, match="differ in shape"):
        SeedBatch([rbm, rbm2], [st, st2])
    with pytest.raises(ValueError, match="data of shape"):
        SeedBatch([rbm], [st]).fit_epoch(torch.rand(10, 6), 0, RBMConfig())


# --------------------------------------------------------------------------- the workflow's batches


def test_the_workflow_cuts_grid_seeds_into_batches_that_leave_every_core_a_job():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
    import common as W

    specs = ({f"mnist_default_s{i}": {"dataset": "mnist", "seed": i} for i in range(10)}
             | {f"fashion-mnist_default_s{i}": {"dataset": "fashion-mnist", "seed": i} for i in range(5)}
             | {"mnist_50_s0": {"dataset": "mnist", "seed": 0, "hidden_sizes": [50]}})
    got = W.seed_batches(specs, 5, 2)
    assert got == {"mnist_default_s0-1-2-3-4": [f"mnist_default_s{i}" for i in range(5)],
                   "mnist_default_s5-6-7-8-9": [f"mnist_default_s{i}" for i in range(5, 10)],
                   "fashion-mnist_default_s0-1": ["fashion-mnist_default_s0", "fashion-mnist_default_s1"],
                   "fashion-mnist_default_s2-3-4": [f"fashion-mnist_default_s{i}" for i in (2, 3, 4)]}
    assert W.seed_batches(specs, 1, 2) == {} and W.seed_batches(specs, 5, 16) == {}  # off; enough cores
    assert W.seed_batches(specs, 3, 1)["fashion-mnist_default_s2-3-4"] == [f"fashion-mnist_default_s{i}"
                                                                          for i in (2, 3, 4)]
    with pytest.raises(ValueError, match="seed_batch"):
        W.seed_batches(specs, 0, 2)


def test_train_batch_cli_records_each_network_under_its_alone_key(tmp_path, monkeypatch):
    import json

    from rr_utils import networks as N

    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
    spec = {"hidden_sizes": [30, 10], "rows": 300, "epochs": 1}
    out = tmp_path / "batch.json"
    N.main(["train-batch", "--quick", "--spec", json.dumps([{"seed": 0, **spec}, {"seed": 1, **spec}]),
            "--out", str(out)])
    recs = json.loads(out.read_text())["networks"]
    assert [r["source"] for r in recs] == ["trained", "trained"] and recs[1]["seed_batch"] == [0, 1]
    one = tmp_path / "one.json"
    N.main(["train", "--quick", "--spec", json.dumps({"seed": 1, **spec}), "--from-batch", str(out), "--out", str(one)])
    assert json.loads(one.read_text()) == recs[1]
    again = tmp_path / "again.json"  # trained alone: the batch's network, from the model cache
    N.main(["train", "--quick", "--spec", json.dumps({"seed": 1, **spec}), "--out", str(again)])
    rec = json.loads(again.read_text())
    assert rec["cache_key"] == recs[1]["cache_key"] and rec["source"] == "model-cache"
    with pytest.raises(ValueError, match="differ in seed only"):
        N.train_networks([N.NetworkSpec(seed=0), N.NetworkSpec(seed=1, rows=5)], quick=True)


# --------------------------------------------------------------------------- CUDA graphs of a batch


def test_seed_graphs_refuse_the_cpu_the_lockstep_layout_and_the_classical_recipe():
    from rr_utils.models.batched import GraphedSeedEpochs, seed_epoch_runner

    pairs = [_fresh(s, 3, RBMConfig(), 5) for s in (0, 1)]
    with pytest.raises(ValueError, match="CUDA device"):
        GraphedSeedEpochs(SeedBatch(*zip(*pairs), stacked=True), RBMConfig())
    with pytest.raises(ValueError, match="authors' recipe"):
        seed_epoch_runner(SeedBatch(*zip(*pairs)), RBMConfig(recipe="classical"))
    if torch.cuda.is_available():
        cuda = [(r.to("cuda"), PCDState(tuple(v.cuda() for v in st.velocity), st.particles.cuda(),
                                         _generator(torch.device("cuda"), s))) for s, (r, st) in enumerate(pairs)]
        with pytest.raises(ValueError, match="stacked layout"):
            GraphedSeedEpochs(SeedBatch(*zip(*cuda), stacked=False), RBMConfig())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (GPU skip)")
def test_a_graphed_batch_is_bitwise_the_eager_batch(digits, monkeypatch):
    """On CUDA: three epochs of a 3-seed batch replayed from its graph equal three eager epochs, bit for bit."""
    from rr_utils.models.batched import seed_epoch_runner

    dev = torch.device("cuda")
    cfg = RBMConfig(device="cuda")
    x = digits[:300].to(dev)

    def batch():
        pairs = []
        for s in range(3):
            g = _generator(dev, _seed_for(s, 0))
            rbm = RBM.initialise(784, 500, g, device=dev)
            pairs.append((rbm, PCDState.initialise(rbm, cfg, g)))
        return SeedBatch(*zip(*pairs))

    graphed, eager = batch(), batch()
    fit = seed_epoch_runner(graphed, cfg)
    with _deterministic(dev):
        for e in range(3):
            fit(x, e)
            eager.fit_epoch(x, e, cfg)
    torch.cuda.synchronize()
    assert torch.equal(graphed.W, eager.W) and torch.equal(graphed.particles, eager.particles)
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(graphed.generators, eager.generators))


def test_the_workflow_plans_one_batch_job_for_a_grids_seeds(tmp_path):
    """Snakemake dry run of a grid of 3 seeds on 1 core with seed_batch 5: one network_batch job, and each
    network's marker copied from it (a full run of this grid gave byte-identical results/grid.csv with
    seed_batch 1, one network per job)."""
    import os
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    repo = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake")
    shutil.copytree(root / "rr_utils", repo / "rr_utils", ignore=ignore)
    shutil.copytree(root / "workflow", repo / "workflow", ignore=ignore)
    (repo / "notebooks").mkdir()
    (repo / "workflow" / "config.yaml").write_text(
        "quick: false\ntrain_threads: 1\nnotebook_threads: 1\nseed_batch: 5\ngrid:\n  datasets: [mnist]\n"
        "  archs: [\"20-10\"]\n  rows: [500]\n  seeds: [0, 1, 2]\n  epochs: 2\nquick_grid: {}\nnetworks: {}\n")
    env = dict(os.environ, PYTHONPATH=str(repo), RR_RESULTS_DIR=str(repo / "results"),
               RR_CACHE_DIR=str(repo / "cache"))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", "workflow/Snakefile", "--cores", "1", "-n", "grid"],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert re.search(r"^network_batch\s+1$", text, re.M) and re.search(r"^network_from_batch\s+3$", text, re.M), text
    assert "mnist_20-10_r500_ep2_s0-1-2" in text and not re.search(r"^network\s", text, re.M), text

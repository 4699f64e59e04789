"""Generating images from each layer of a DBN, as the authors did (docs/paper.md §3).

The network is a stack of Bernoulli RBMs given as a list ``layers`` of
``(W, vbias, hbias)`` (torch tensors or numpy arrays), ``W`` of shape
(n_visible, n_hidden); ``layers[0]`` has the pixels (784 for MNIST, grey/255
in [0, 1]) as its visible units and ``layers[l]`` takes as visible units the
hidden units of ``layers[l-1]``. "Depth d" (1-based) is the d-th hidden layer,
whose RBM is ``layers[d-1]``.

``generate_from_layer``: chains of alternating steps on the RBM of one layer,
then a deterministic projection down to pixels (``project_down``);
``generate_snapshots``: the same chains read out after several numbers of steps
(the mixing check). The scores of the generated images are in
``rr_utils.generation.scoring``; image grids in ``rr_utils.plotting.image_grid``.
"""

from __future__ import annotations

import numpy as np
import torch

from rr_utils._checks import check_int, check_steps, is_int
from rr_utils.devices import resolve_device
from rr_utils.generation._tensors import _cpu_threads, _to_tensor
from rr_utils.progress import show_progress

__all__ = ["generate_from_layer", "generate_snapshots", "project_down"]


def _prepare_layers(layers, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Validate a stack of (W, vbias, hbias) and return float32 tensors on ``device``."""
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__") or len(layers) == 0:
        raise ValueError("layers: expected a non-empty list of (W, vbias, hbias) tuples")
    out = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, (tuple, list)) or len(layer) != 3:
            raise ValueError(f"layers[{i}]: expected a (W, vbias, hbias) tuple, got {type(layer).__name__}"
                             + (f" of length {len(layer)}" if hasattr(layer, "__len__") else ""))
        W = _to_tensor(layer[0], f"layers[{i}] W", device, ndim=2)
        a = _to_tensor(layer[1], f"layers[{i}] vbias", device).reshape(-1)
        b = _to_tensor(layer[2], f"layers[{i}] hbias", device).reshape(-1)
        n_vis, n_hid = W.shape
        if n_vis == 0 or n_hid == 0:
            raise ValueError(f"layers[{i}] W: empty weight matrix of shape {(n_vis, n_hid)}")
        if a.numel() != n_vis:
            raise ValueError(f"layers[{i}]: vbias has {a.numel()} entries but W has {n_vis} visible rows")
        if b.numel() != n_hid:
            raise ValueError(f"layers[{i}]: hbias has {b.numel()} entries but W has {n_hid} hidden columns")
        if out and out[-1][0].shape[1] != n_vis:
            raise ValueError(f"layers[{i}]: W has {n_vis} visible units but layers[{i - 1}] has "
                             f"{out[-1][0].shape[1]} hidden units; W must be (n_visible, n_hidden)")
        out.append((W, a, b))
    return out


def _check_depth(depth, n_layers: int) -> int:
    if not is_int(depth):
        raise ValueError(f"depth: expected an integer 1..{n_layers}, got {depth!r}")
    if not 1 <= depth <= n_layers:
        raise ValueError(f"depth: must be in 1..{n_layers} (1 = first hidden layer) for a stack of "
                         f"{n_layers} RBMs, got {depth}")
    return int(depth)


@torch.inference_mode()
def project_down(layers, depth: int, visible_probs, device=None) -> np.ndarray:
    """Map visible probabilities of the RBM at ``depth`` down to pixels, deterministically.

    ``visible_probs`` has shape (n, n_visible of ``layers[depth-1]``), i.e. it
    is a state of hidden layer ``depth - 1`` (pixels when ``depth == 1``, in
    which case it is returned unchanged). Each lower layer is applied in turn
    with probabilities, no sampling: ``x_{l-1} = sigmoid(x_l @ W_{l-1}.T + vbias_{l-1})``.

    Parameters
    ----------
    layers : list of (W, vbias, hbias)
        The stack of RBMs (module docstring), torch tensors or numpy arrays.
    depth : int
        The RBM whose visible units ``visible_probs`` fills, 1-based.
    visible_probs : array_like
        (n, n_visible of ``layers[depth-1]``) probabilities.
    device : str or torch.device, optional
        Where to compute (``rr_utils.devices.resolve_device``; None: the default device).

    Returns
    -------
    numpy.ndarray
        float32 (n, n_pixels) in [0, 1].

    Raises
    ------
    ValueError
        For a bad depth, weights whose shapes do not chain, or ``visible_probs`` of the wrong width.
    """
    dev = resolve_device(device)
    stack = _prepare_layers(layers, dev)
    depth = _check_depth(depth, len(stack))
    x = _to_tensor(visible_probs, "visible_probs", dev, ndim=2)
    n_vis = stack[depth - 1][0].shape[0]
    if x.shape[1] != n_vis:
        raise ValueError(f"visible_probs: has {x.shape[1]} columns but the RBM at depth {depth} has "
                         f"{n_vis} visible units")
    return _project(stack, depth, x).cpu().numpy()


def _project(stack, depth: int, x: torch.Tensor) -> torch.Tensor:
    for W, a, _ in reversed(stack[: depth - 1]):
        x = torch.sigmoid(x @ W.T + a)
    return x


@torch.inference_mode()
def generate_from_layer(layers, depth: int, n_chains: int = 100, n_steps: int = 2000, seed: int = 0,
                        device=None, cpu_threads: int | None = 1, progress: bool | None = None) -> np.ndarray:
    """Generate ``n_chains`` images from hidden layer ``depth`` (1-based), as the authors did.

    On the RBM ``(W, a, b) = layers[depth-1]``:

    1. ``h`` = uniform random numbers in [0, 1) (n_chains, n_hidden): hidden
       *probabilities*, not states;
    2. ``n_steps`` times:
       ``h_s ~ Bernoulli(h)`` (the only sampled quantity; drawn as ``uniform < h``),
       ``v = sigmoid(h_s @ W.T + a)`` (visible *probabilities*, not sampled),
       ``h = sigmoid(v @ W + b)`` (hidden *probabilities* of those probabilities);
    3. the last ``v`` is projected to pixels with ``project_down`` (probabilities
       through every lower layer, no sampling).

    All chains run in parallel; randomness comes only from a
    ``torch.Generator`` seeded with ``seed`` on the chosen device, so a result
    is reproducible for a given seed and device (CPU and CUDA streams differ).

    Parameters
    ----------
    layers : list of (W, vbias, hbias)
        The stack of RBMs (module docstring), torch tensors or numpy arrays.
    depth : int
        The hidden layer to generate from, 1-based.
    n_chains : int
        Chains run in parallel, one image each.
    n_steps : int
        Alternating steps of each chain.
    seed : int
        Seeds the ``torch.Generator`` of every random draw.
    device : str or torch.device, optional
        Where the chains run (None: the default device).
    cpu_threads : int or None
        On CPU, the torch threads of the chains (None: unchanged; see ``_cpu_threads`` for why 1).
    progress : bool or None
        A tqdm.auto bar over the steps (None: shown in a Jupyter kernel or on a terminal, see
        ``rr_utils.progress``); it never touches the random stream.

    Returns
    -------
    numpy.ndarray
        float32 (n_chains, n_pixels) in [0, 1] (n_pixels = 784 for MNIST).

    Raises
    ------
    ValueError
        For a bad depth, n_chains < 1, n_steps < 1 or weights whose shapes do not chain.
    """
    n_steps = check_int(n_steps, "n_steps", 1)
    return generate_snapshots(layers, depth, (n_steps,), n_chains, seed, device, cpu_threads, progress)[n_steps]


@torch.inference_mode()
def generate_snapshots(layers, depth: int, steps=(500, 2000, 5000), n_chains: int = 100, seed: int = 0,
                       device=None, cpu_threads: int | None = 1, progress: bool | None = None) -> dict[int, np.ndarray]:
    """``generate_from_layer`` read out after each number of steps in ``steps``: {n_steps: images}.

    One set of chains runs to ``max(steps)``; the images at ``n`` steps are
    exactly (bitwise) those of ``generate_from_layer(..., n_steps=n, seed=seed)``,
    since the random stream is consumed in the same order. Used for the mixing
    check (scores against the number of steps) at the cost of the longest run.

    Parameters
    ----------
    layers : list of (W, vbias, hbias)
        The stack of RBMs (module docstring).
    depth : int
        The hidden layer to generate from, 1-based.
    steps : sequence of int
        The numbers of steps to read the chains out at.
    n_chains, seed, device, cpu_threads, progress
        As in ``generate_from_layer``.

    Returns
    -------
    dict of int to numpy.ndarray
        Number of steps -> float32 (n_chains, n_pixels) images in [0, 1].

    Raises
    ------
    ValueError
        For a bad depth, n_chains < 1, bad ``steps`` or weights whose shapes do not chain.
    """
    dev = resolve_device(device)
    stack = _prepare_layers(layers, dev)
    depth = _check_depth(depth, len(stack))
    n_chains = check_int(n_chains, "n_chains", 1)
    seed = check_int(seed, "seed", 0)
    steps = check_steps(steps)
    gen = torch.Generator(device=dev).manual_seed(seed)
    W, a, b = stack[depth - 1]
    Wt = W.T.contiguous()  # contiguous once, not at every step
    h = torch.rand(n_chains, W.shape[1], generator=gen, device=dev)
    u = torch.empty_like(h)  # reused buffer: uniforms, then the sampled states
    out, done = {}, 0
    bar = _progress_bar(steps[-1], f"generating from layer {depth}", progress)
    try:
        with _cpu_threads(dev, cpu_threads):
            for n in steps:
                for _ in range(n - done):
                    h_s = u.uniform_(generator=gen).lt_(h)  # Bernoulli(h): on CPU the draws of torch.bernoulli, 4x faster
                    v = torch.sigmoid(torch.addmm(a, h_s, Wt))
                    h = torch.sigmoid(torch.addmm(b, v, W))
                    if bar is not None:
                        bar.update()
                done = n
                out[n] = _project(stack, depth, v).cpu().numpy()
    finally:
        if bar is not None:
            bar.close()
    return out


def _progress_bar(total: int, desc: str, progress: bool | None):
    """A tqdm.auto bar (a widget in Jupyter), or None when not shown."""
    if not show_progress(progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)

"""Networks trained by backpropagation, for comparison with the DBNs (notebook 09).

Everything here is *our* choice: the paper studies deep belief networks only.

* ``mlp``: a classifier with the DBN's hidden widths (``DBN_WIDTHS``, 784-500-
  250-120-60-30-25-20-15-10) and a linear 10-way output. ``activation="tanh"``
  with Xavier (Glorot) uniform weights and zero biases is the default;
  ``"sigmoid"`` with PyTorch's default initialisation is kept as the network
  that does not learn (at this depth its gradients vanish).
* ``autoencoder``: the same widths as encoder, the mirror image as decoder
  (10-15-...-500-784) with a sigmoid output, trained on binary cross-entropy
  against the grey levels.
* ``train``: Adam on mini-batches in a seeded order, on a fixed number of CPU
  threads, with deterministic algorithms; the weights are kept at the requested
  epochs (``checkpoints``; epoch 0 is the initialisation), with the train and
  test scores of each.

Module names are stable, so that layers can be named to ``rr_utils.probe``:
``act1`` ... ``act9`` for the classifier's hidden units, ``encoder.act1`` ...
``encoder.act9`` for the autoencoder's code path (``encoder.act9`` is the
10-unit code).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from rr_utils._checks import check_int, check_positive_finite
from rr_utils.devices import resolve_device

__all__ = ["DBN_WIDTHS", "mlp", "autoencoder", "hidden_layers", "train", "accuracy", "reconstruction_mse",
           "TrainedRun", "random_shift"]

DBN_WIDTHS = (784, 500, 250, 120, 60, 30, 25, 20, 15, 10)  # the DBN's first nine hidden layers
ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}


def _check_widths(widths, minimum: int = 2) -> tuple[int, ...]:
    try:
        w = tuple(widths)
    except TypeError:
        raise ValueError(f"widths: expected a sequence of layer widths, got {widths!r}") from None
    if len(w) < minimum:
        raise ValueError(f"widths: need the input width and at least {minimum - 1} hidden width, got {w}")
    return tuple(check_int(v, "widths", 1) for v in w)


def _stack(widths, activation: str, init: str, last_activation: bool = True) -> "OrderedDict[str, nn.Module]":
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if init not in ("xavier", "default"):
        raise ValueError(f"init: expected 'xavier' or 'default', got {init!r}")
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        lin = nn.Linear(a, b)
        if init == "xavier":
            nn.init.xavier_uniform_(lin.weight, gain=nn.init.calculate_gain(activation))
            nn.init.zeros_(lin.bias)
        mods[f"fc{i}"] = lin
        if last_activation or i < len(widths) - 1:
            mods[f"act{i}"] = ACTIVATIONS[activation]()
    return mods


def mlp(widths=DBN_WIDTHS, n_classes: int = 10, activation: str = "tanh", init: str = "xavier",
        seed: int = 0) -> nn.Sequential:
    """Classifier: hidden layers ``fc1/act1`` ... of ``widths``, then a linear ``out`` (logits).

    ``widths=(784,)`` gives softmax regression (no hidden layer): the linear baseline.

    ``init="xavier"``: Glorot-uniform weights with the activation's gain (5/3 for
    tanh), zero biases; ``"default"``: PyTorch's ``nn.Linear`` initialisation.
    The weights are drawn from ``seed`` (the global RNG is left untouched).
    """
    widths = _check_widths(widths, minimum=1)
    n_classes = check_int(n_classes, "n_classes", 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int(seed, "seed", 0))
        mods = _stack(widths, activation, init)
        mods["out"] = nn.Linear(widths[-1], n_classes)
    return nn.Sequential(mods)


class AutoEncoder(nn.Module):
    """``encoder`` (widths) then ``decoder`` (reversed widths, sigmoid output); forward gives logits."""

    def __init__(self, encoder: nn.Sequential, decoder: nn.Sequential):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the reconstruction (``torch.sigmoid`` of them gives grey levels)."""
        return self.decoder(self.encoder(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(x))


def autoencoder(widths=DBN_WIDTHS, activation: str = "tanh", init: str = "xavier", seed: int = 0) -> AutoEncoder:
    """Encoder ``fc1/act1`` ... over ``widths``; decoder mirrors it, its last layer linear (logits)."""
    widths = _check_widths(widths)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int(seed, "seed", 0))
        enc = nn.Sequential(_stack(widths, activation, init))
        dec = nn.Sequential(_stack(widths[::-1], activation, init, last_activation=False))
    return AutoEncoder(enc, dec)


def hidden_layers(model: nn.Module) -> list[str]:
    """Names of the hidden activation modules in order (``act*`` of an MLP, ``encoder.act*`` of an autoencoder)."""
    root = model.encoder if isinstance(model, AutoEncoder) else model
    prefix = "encoder." if isinstance(model, AutoEncoder) else ""
    return [prefix + n for n, m in root.named_children() if n.startswith("act")]


@contextlib.contextmanager
def _settings(device: torch.device, threads: int | None):
    """Deterministic algorithms and a fixed CPU thread count for the duration (both restored)."""
    prev = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    old_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cpu" and threads is not None:
        torch.set_num_threads(check_int(threads, "threads", 1))
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])


def _tensor(x, name: str, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim == 0 or len(t) == 0:
        raise ValueError(f"{name}: empty or scalar; expected one row per input")
    t = t.to(device=device, dtype=dtype)
    if dtype.is_floating_point and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return t


@torch.no_grad()
def accuracy(model: nn.Module, x, y, batch_size: int = 4096) -> float:
    """Fraction of inputs whose largest logit is the label (model in eval mode)."""
    dev = next(model.parameters()).device
    x, y = _tensor(x, "x", dev), _tensor(y, "y", dev, torch.int64)
    if len(x) != len(y):
        raise ValueError(f"y: {len(y)} labels for {len(x)} inputs")
    was = model.training
    model.eval()
    hits = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
               for i in range(0, len(x), batch_size))
    model.train(was)
    return hits / len(x)


@torch.no_grad()
def reconstruction_mse(model: AutoEncoder, x, batch_size: int = 4096) -> float:
    """Mean squared error per pixel between ``x`` and its reconstruction (grey levels in [0, 1])."""
    dev = next(model.parameters()).device
    x = _tensor(x, "x", dev)
    was = model.training
    model.eval()
    sse = sum(float(((model.reconstruct(x[i:i + batch_size]) - x[i:i + batch_size]) ** 2).sum())
              for i in range(0, len(x), batch_size))
    model.train(was)
    return sse / x.numel()


class TrainedRun:
    """The outcome of ``train``: the final model, its checkpoints and the scores per epoch.

    ``checkpoints``: {epoch: state_dict (CPU copies)}; ``history``: list of dicts
    (epoch, loss, train and test score; the score is accuracy for a classifier and
    the reconstruction MSE for an autoencoder); ``seconds``: training wall time.
    ``at(epoch)`` gives a copy of the model with that checkpoint's weights.
    """

    def __init__(self, model, checkpoints, history, seconds, task):
        self.model, self.checkpoints, self.history, self.seconds, self.task = model, checkpoints, history, seconds, task

    def at(self, epoch: int) -> nn.Module:
        if epoch not in self.checkpoints:
            raise ValueError(f"epoch: no checkpoint at {epoch!r}; have {sorted(self.checkpoints)}")
        m = copy.deepcopy(self.model)
        m.load_state_dict(self.checkpoints[epoch])
        return m.eval()

    def score(self, epoch: int, split: str = "test") -> float:
        for h in self.history:
            if h["epoch"] == epoch:
                return h[split]
        raise ValueError(f"epoch: no score at {epoch!r}")

    def __repr__(self) -> str:
        last = self.history[-1]
        return (f"TrainedRun({self.task}, epochs={last['epoch']}, train={last['train']:.4f}, "
                f"test={last['test']:.4f}, {self.seconds:.1f} s)")


def random_shift(x: torch.Tensor, shift: int, generator: torch.Generator, side: int = 28) -> torch.Tensor:
    """Translate each (side x side) image of x (n, side*side) by its own offset in [-shift, shift]^2, zero-filled."""
    n = len(x)
    padded = nn.functional.pad(x.view(n, side, side), (shift, shift, shift, shift))
    off = torch.randint(0, 2 * shift + 1, (2, n), generator=generator).to(x.device)
    ar = torch.arange(side, device=x.device)
    rows = (off[0, :, None] + ar)[:, :, None]
    cols = (off[1, :, None] + ar)[:, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None], rows, cols].reshape(n, -1)


def train(model: nn.Module, x, y=None, *, x_test, y_test=None, epochs: int = 16, checkpoints=(0, 1, 2, 4, 8, 16),
          batch_size: int = 100, lr: float = 1e-3, cosine: bool = True, shift: int = 0, seed: int = 0,
          threads: int | None = 1, device="auto", progress=None) -> TrainedRun:
    """Train ``model`` with Adam: cross-entropy on (x, y) for an ``mlp``, binary cross-entropy
    of x against its reconstruction for an ``autoencoder`` (``y`` must then be None).

    ``cosine``: the learning rate decays from ``lr`` to 0 along a half cosine over the
    epochs (per epoch); ``shift`` > 0 translates each training image by a random
    offset of up to ``shift`` pixels (28 x 28 images; classifier only), an
    augmentation that lifts held-out accuracy on 8,000 digits.

    The mini-batch order (and the shifts) come from a generator seeded with ``seed``; training runs
    under ``torch.use_deterministic_algorithms`` on ``threads`` CPU threads (CUDA
    when ``device`` resolves to it), so a run repeats bit for bit on the same
    machine. The model is trained in place (and left in eval mode); the weights
    at each epoch of ``checkpoints`` (0 = before training) are copied to the CPU.
    """
    is_ae = isinstance(model, AutoEncoder)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module (mlp or autoencoder), got {type(model).__name__}")
    if is_ae != (y is None):
        raise ValueError("y: give labels for a classifier and none (y=None) for an autoencoder")
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    lr = check_positive_finite(lr, "lr")
    seed = check_int(seed, "seed", 0)
    shift = check_int(shift, "shift", 0)
    if shift and (is_ae or np.shape(x)[-1] != 784):
        raise ValueError("shift: only for a classifier of 28 x 28 images (784 inputs)")
    keep = sorted({check_int(e, "checkpoints", 0) for e in checkpoints})
    if keep and keep[-1] > epochs:
        raise ValueError(f"checkpoints: epoch {keep[-1]} is after the last epoch ({epochs})")
    dev = resolve_device(device)
    model.to(dev)
    x, xt = _tensor(x, "x", dev), _tensor(x_test, "x_test", dev)
    if not is_ae:
        y, yt = _tensor(y, "y", dev, torch.int64), _tensor(y_test, "y_test", dev, torch.int64)
        if len(y) != len(x) or len(yt) != len(xt):
            raise ValueError(f"y: {len(y)} labels for {len(x)} inputs, y_test: {len(yt)} for {len(xt)}")

    def scores(loss):
        if is_ae:
            return dict(loss=loss, train=reconstruction_mse(model, x), test=reconstruction_mse(model, xt))
        return dict(loss=loss, train=accuracy(model, x, y), test=accuracy(model, xt, yt))

    saved, history = {}, []
    order = torch.Generator().manual_seed(seed)  # CPU: the same order on any device
    t0 = time.perf_counter()
    with _settings(dev, threads):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs) if cosine else None
        for epoch in range(epochs + 1):
            if epoch > 0:
                model.train()
                total = 0.0
                perm = torch.randperm(len(x), generator=order).to(dev)
                for i in range(0, len(x), batch_size):
                    idx = perm[i:i + batch_size]
                    xb = random_shift(x[idx], shift, order) if shift else x[idx]
                    out = model(xb)
                    if is_ae:
                        loss = nn.functional.binary_cross_entropy_with_logits(out, x[idx])
                    else:
                        loss = nn.functional.cross_entropy(out, y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                if sched is not None:
                    sched.step()
                model.eval()
                history.append(dict(epoch=epoch, **scores(total / len(x))))
            else:
                model.eval()
                history.append(dict(epoch=0, **scores(float("nan"))))
            if epoch in keep:
                saved[epoch] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if progress is not None:
                progress(history[-1])
    return TrainedRun(model.eval(), saved, history, time.perf_counter() - t0, "autoencoder" if is_ae else "classifier")

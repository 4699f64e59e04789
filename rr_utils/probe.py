"""Resolution and relevance of the layers of any PyTorch model, on any data.

    from rr_utils.probe import layer_report
    df = layer_report(model, images)          # one row per probed layer

Forward hooks on the probed modules binarise each mini-batch's outputs (on the
model's device) and feed one ``entropy.StateCounter`` per layer, so memory
grows with the number of distinct states, never with M x width. The hooks
return None (they never replace an output) and are removed when the call ends,
also when it fails.

Binarisation (``binarize``), per probed module:

* ``"threshold"``: ``x > threshold`` for probabilities (outputs must lie in [0, 1]);
* ``"sign"``: ``x > 0`` for outputs centred on 0 (tanh, +-1 spins, pre-activations);
* ``"positive"``: ``x > 0`` for rectifiers (ReLU and its relatives);
* a callable ``f(output) -> 0/1 or bool tensor (B, units)`` of your own;
* ``"auto"`` (default): by module type (``AUTO_RULES``): sigmoids ->
  threshold, tanh-like -> sign, rectifiers -> positive. Any other module
  (Linear, Conv, custom) has no automatic rule: name one.
* a dict {layer name: one of the above} to choose per layer.

The rule used for each layer is in the ``rule`` column (and in
``df.attrs["binarize"]``). A rule that contradicts the module type (``sign``
on a Sigmoid, ``threshold`` on a ReLU, ...) or outputs that do not fit it
(values outside [0, 1] for ``threshold``, NaN or infinities for any) raise a
ValueError naming the layer.

The claims and their references (random states matched to a layer's width and
resolution, random stacks, the untrained network) are in ``rr_utils.claims``:
``claims.layers.layer_claims(list(layer_counts(...).values()), widths)``.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np
import pandas as pd
import torch
from torch import nn

from rr_utils import bound as B
from rr_utils import entropy as E
from rr_utils._checks import check_counts, check_int, is_real
from rr_utils.devices import resolve_device

__all__ = ["layer_report", "layer_counts", "report_from_counts", "default_layers", "AUTO_RULES", "RULES"]

RULES = ("threshold", "sign", "positive")

# module type -> the rule "auto" picks (element-wise activations only: their output is per unit)
AUTO_RULES: dict[type, str] = {
    nn.Sigmoid: "threshold", nn.Hardsigmoid: "threshold",
    nn.Tanh: "sign", nn.Hardtanh: "sign", nn.Softsign: "sign",
    nn.ReLU: "positive", nn.ReLU6: "positive", nn.LeakyReLU: "positive", nn.PReLU: "positive",
    nn.RReLU: "positive", nn.ELU: "positive", nn.SELU: "positive", nn.CELU: "positive",
    nn.GELU: "positive", nn.SiLU: "positive", nn.Mish: "positive",
}
_WHY = {"threshold": "outputs are probabilities in [0, 1]", "sign": "outputs are centred on 0",
        "positive": "outputs are > 0 exactly where the unit is active"}


def _auto_rule(module: nn.Module) -> str | None:
    for t in type(module).__mro__:
        if t in AUTO_RULES:
            return AUTO_RULES[t]
    return None


def default_layers(model: nn.Module) -> list[str]:
    """Names of the leaf modules whose output is per unit and has an automatic rule (``AUTO_RULES``)."""
    return [n for n, m in model.named_modules() if n and not any(True for _ in m.children()) and _auto_rule(m)]


def _describe_rule(rule, threshold: float) -> str:
    if callable(rule):
        return f"callable {getattr(rule, '__name__', type(rule).__name__)}"
    return {"threshold": f"threshold (x > {threshold:g})", "sign": "sign (x > 0)", "positive": "positive (x > 0)"}[rule]


def _resolve_rule(name: str, module: nn.Module, binarize) -> object:
    """The rule (a RULES string or a callable) for one layer; ValueError naming the layer when none fits."""
    kind = type(module).__name__
    if isinstance(binarize, dict):
        if name not in binarize:
            raise ValueError(f"binarize: no rule for layer {name!r} ({kind}) in the dict (keys {sorted(binarize)})")
        binarize = binarize[name]
    if callable(binarize):
        return binarize
    if not isinstance(binarize, str) or binarize not in RULES + ("auto",):
        raise ValueError(f"binarize: expected 'auto', {', '.join(map(repr, RULES))}, a callable or a dict of them, "
                         f"got {binarize!r}")
    auto = _auto_rule(module)
    if binarize == "auto":
        if auto is None:
            raise ValueError(f"layer {name!r} ({kind}): 'auto' has no rule for this module type; "
                             f"pass binarize='sign' (centred outputs, pre-activations), 'positive' (rectifiers), "
                             f"'threshold' (probabilities) or a callable")
        return auto
    if auto is not None and binarize != auto:
        raise ValueError(f"layer {name!r} ({kind}): binarize={binarize!r} does not fit this activation "
                         f"({_WHY[auto]}: use {auto!r})")
    return binarize


def _binarise(out: torch.Tensor, rule, threshold: float, name: str, kind: str) -> torch.Tensor:
    """(B, units) bool tensor on the output's device; ValueError naming the layer for unfit outputs."""
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"layer {name!r} ({kind}): output is a {type(out).__name__}, not a tensor; "
                         "probe a module that returns one tensor")
    if out.ndim < 2:
        raise ValueError(f"layer {name!r} ({kind}): output has shape {tuple(out.shape)}; expected (batch, units, ...)")
    flat = out.detach().reshape(out.shape[0], -1)
    if callable(rule):
        s = rule(flat)
        if not isinstance(s, torch.Tensor):
            s = torch.as_tensor(np.asarray(s), device=flat.device)
        if s.ndim == 1 or s.shape[0] != flat.shape[0]:
            raise ValueError(f"layer {name!r} ({kind}): the binarize callable returned shape {tuple(s.shape)} "
                             f"for an output of shape {tuple(flat.shape)}; expected (batch, units)")
        s = s.reshape(s.shape[0], -1)
        if s.dtype != torch.bool:
            if s.is_floating_point() and bool(torch.isnan(s).any()):
                raise ValueError(f"layer {name!r} ({kind}): the binarize callable returned NaN")
            if not bool(((s == 0) | (s == 1)).all()):
                raise ValueError(f"layer {name!r} ({kind}): the binarize callable returned values other than 0/1")
            s = s == 1
        return s
    if not flat.is_floating_point():
        flat = flat.float()
    if not bool(torch.isfinite(flat).all()):
        what = "NaN" if bool(torch.isnan(flat).any()) else "infinite values"
        raise ValueError(f"layer {name!r} ({kind}): outputs contain {what}")
    if rule == "threshold":
        lo, hi = float(flat.min()), float(flat.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"layer {name!r} ({kind}): outputs outside [0, 1] (min {lo:.4g}, max {hi:.4g}) "
                             "are not probabilities; use binarize='sign' or 'positive'")
        return flat > threshold
    return flat > 0  # sign and positive: the unit is on where its output is > 0


def _batches(data, batch_size: int):
    """Yield input tensors from a tensor, an array, or an iterable of x or (x, y)."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        x = torch.from_numpy(np.ascontiguousarray(data)) if isinstance(data, np.ndarray) else data
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"data: empty (shape {tuple(x.shape)}); need at least one input")
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size]
        return
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise ValueError(f"data: expected a tensor, a NumPy array or a DataLoader of x or (x, y), "
                         f"got {type(data).__name__}")
    for i, b in enumerate(data):
        if isinstance(b, (tuple, list)) and len(b) > 0:
            b = b[0]
        if isinstance(b, np.ndarray):
            b = torch.from_numpy(np.ascontiguousarray(b))
        if not isinstance(b, torch.Tensor):
            raise ValueError(f"data: batch {i} is a {type(b).__name__}; expected a tensor x or a pair (x, y)")
        if b.ndim == 0 or len(b) == 0:
            raise ValueError(f"data: batch {i} is empty (shape {tuple(b.shape)})")
        yield b


def _model_dtype(model: nn.Module):
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


@contextlib.contextmanager
def _on_device(model: nn.Module, device):
    """Run the model on ``device`` in eval mode; restore its device and training flags after.

    "auto": CUDA when present, or the accelerator the model already is on. A model
    spread over several devices is left where it is (inputs go to its first parameter's).
    """
    tensors = list(model.parameters()) + list(model.buffers())
    before = {t.device for t in tensors}
    if len(before) > 1:
        dev, moved = tensors[0].device, False
    else:
        dev = resolve_device(device)
        if device == "auto" and before and next(iter(before)).type != "cpu":
            dev = next(iter(before))  # already on an accelerator: stay there
        moved = bool(before) and before != {dev}
    modes = {m: m.training for m in model.modules()}
    if moved:
        model.to(dev)
    model.eval()
    try:
        yield dev
    finally:
        for m, t in modes.items():
            m.training = t
        if moved:
            model.to(next(iter(before)))


def _shared_msg(name: str, kind: str, n_calls: int) -> str:
    return (f"layer {name!r} ({kind}): ran {n_calls} times in one forward pass (a module shared by several "
            "layers?); its outputs are not one layer's states: give each layer its own module")


def _probe(model, data, layers, binarize, threshold, batch_size, device):
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    batch_size = check_int(batch_size, "batch_size", 1)
    if not is_real(threshold) or not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"threshold: expected a number in [0, 1), got {threshold!r}")
    threshold = float(threshold)
    modules = dict(model.named_modules())
    if layers is None:
        names = default_layers(model)
        if not names:
            raise ValueError(f"layers: {type(model).__name__} has no activation module with an automatic rule "
                             f"({', '.join(sorted({t.__name__ for t in AUTO_RULES}))}); name the modules to probe, "
                             f"e.g. layers=[{', '.join(repr(n) for n in list(modules)[1:3])}]")
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names:
            raise ValueError("layers: empty list; give module names or None for every activation")
        for n in names:
            if not isinstance(n, str) or n not in modules or n == "":
                close = [m for m in modules if m and isinstance(n, str) and (n in m or m in n)][:5]
                raise ValueError(f"layers: no module named {n!r} in the model"
                                 + (f" (close: {close})" if close else "")
                                 + f"; names come from model.named_modules(), e.g. {[m for m in modules if m][:6]}")
        if len(set(names)) != len(names):
            raise ValueError(f"layers: names repeated in {names}")
    rules = OrderedDict((n, _resolve_rule(n, modules[n], binarize)) for n in names)
    counters = {n: E.StateCounter() for n in names}
    calls = {n: 0 for n in names}
    failure: list[BaseException] = []

    def make_hook(name):
        kind = type(modules[name]).__name__

        def hook(module, inputs, output):
            calls[name] += 1
            if failure:
                return None
            if calls[name] > 1:
                failure.append(ValueError(_shared_msg(name, kind, calls[name])))
                return None
            try:
                s = _binarise(output, rules[name], threshold, name, kind)
                if s.shape[0] != expected_rows[0]:
                    raise ValueError(f"layer {name!r} ({kind}): output has {s.shape[0]} rows for a batch of "
                                     f"{expected_rows[0]} inputs; probe a module with one output row per input")
                counters[name].update(s)
            except ValueError as exc:
                msg = str(exc)
                failure.append(exc if msg.startswith("layer ") else ValueError(f"layer {name!r} ({kind}): {msg}"))
            return None  # never replace the output

        return hook

    expected_rows = [0]
    handles = []
    n_batches = 0
    try:
        with _on_device(model, device) as dev:
            dtype = _model_dtype(model)
            for n in names:
                handles.append(modules[n].register_forward_hook(make_hook(n)))
            with torch.inference_mode():
                for xb in _batches(data, batch_size):
                    if xb.is_floating_point() and xb.dtype != dtype:
                        xb = xb.to(dtype)
                    expected_rows[0] = len(xb)
                    for n in names:
                        calls[n] = 0
                    model(xb.to(dev, non_blocking=True))
                    n_batches += 1
                    if failure:
                        raise failure[0]
                    bad = {n: c for n, c in calls.items() if c != 1}
                    if bad:
                        n, c = next(iter(bad.items()))
                        kind = type(modules[n]).__name__
                        if c == 0:
                            raise ValueError(f"layer {n!r} ({kind}): did not run in the forward pass")
                        raise ValueError(_shared_msg(n, kind, c))
    finally:
        for h in handles:
            h.remove()
    if n_batches == 0:
        raise ValueError("data: the loader yielded no batches (empty data)")
    counts = OrderedDict((n, counters[n].counts()) for n in names)
    info = OrderedDict((n, dict(module=type(modules[n]).__name__, width=counters[n].n_units,
                                rule=_describe_rule(rules[n], threshold))) for n in names)
    return counts, info, dev


def layer_counts(model, data, layers=None, binarize="auto", threshold=0.5, batch_size=1024, device="auto"):
    """{layer name: state counts k_s (int64)} of the probed layers (arguments as ``layer_report``)."""
    return _probe(model, data, layers, binarize, threshold, batch_size, device)[0]


def _fit(counts) -> dict:
    try:
        f = E.fit_power_law(counts)
    except ValueError as exc:
        return dict(mu=np.nan, mu_err=np.nan, mu_fitted=False, mu_reason=str(exc))
    if not f.fitted:
        return dict(mu=np.nan, mu_err=np.nan, mu_fitted=False, mu_reason=f.reason)
    return dict(mu=f.mu, mu_err=f.mu_err, mu_fitted=True, mu_reason="")


def report_from_counts(counts_by_layer: dict, info: dict | None = None, fit: bool = True) -> pd.DataFrame:
    """The ``layer_report`` table from {layer: counts} (``info``: {layer: {width, module, rule}}, optional)."""
    if not isinstance(counts_by_layer, dict) or not counts_by_layer:
        raise ValueError("counts_by_layer: expected a non-empty dict {layer name: counts}")
    rows = []
    for name, c in counts_by_layer.items():
        c = check_counts(c, f"counts of {name!r}")
        s = E.summary(c)
        M = s["M"]
        logM = np.log(M) if M > 1 else np.nan
        bound_hk = float(B.bound_at(M, s["H_s"]))
        meta = (info or {}).get(name, {})
        row = dict(layer=name, module=meta.get("module"), width=meta.get("width"), rule=meta.get("rule"),
                   M=M, n_states=s["n_states"], H_s=s["H_s"], H_K=s["H_K"], noise=s["noise"],
                   H_s_norm=s["H_s_norm"], H_K_norm=s["H_K_norm"], noise_norm=s["noise_norm"])
        row.update(_fit(c) if fit else dict(mu=np.nan, mu_err=np.nan, mu_fitted=False, mu_reason="not fitted (fit=False)"))
        row.update(bound_H_K=bound_hk, gap=bound_hk - s["H_K"], gap_norm=(bound_hk - s["H_K"]) / logM if M > 1 else 0.0)
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["binarize"] = {r["layer"]: r["rule"] for r in rows}
    return df


def layer_report(model, data, layers=None, binarize="auto", threshold=0.5, batch_size=1024,
                 device="auto") -> pd.DataFrame:
    """Resolution, relevance, noise, power-law exponent and distance to the bound, per layer.

    model : a ``torch.nn.Module``; run in eval mode under ``torch.inference_mode``
        (its training flags and device are restored afterwards).
    data : a tensor or NumPy array (inputs along the first axis), or an iterable
        (e.g. a ``DataLoader``) of batches ``x`` or ``(x, y)``. Floating inputs are
        cast to the model's parameter dtype.
    layers : module names from ``model.named_modules()``; None: every leaf
        activation module with an automatic rule (``default_layers``).
    binarize : "auto", "threshold", "sign", "positive", a callable, or a dict of
        them by layer (module docstring).
    threshold : for the "threshold" rule, a unit is on where its output is > threshold.
    batch_size : rows per forward pass for a tensor or array (a loader keeps its own).
    device : "auto" (CUDA when present, or the accelerator the model is on), or a
        device; the model is moved there for the call and moved back after.

    Returns a DataFrame, one row per layer in the order given: ``layer``,
    ``module``, ``width``, ``rule`` (the binarisation used), ``M``, ``n_states``,
    ``H_s``, ``H_K``, ``noise`` (nats) and their ``*_norm`` (divided by log M),
    ``mu`` +- ``mu_err`` of m_k ~ k^-(1+mu) with ``mu_fitted`` and ``mu_reason``
    (NaN and False, with the reason, when there are too few states or the fit
    ends on the edge of its search range), ``bound_H_K`` (the maximal relevance
    at this H[s] and M), ``gap`` = bound_H_K - H_K and ``gap_norm`` = gap / log M.
    ``df.attrs``: ``binarize`` {layer: rule} and ``device``.
    """
    counts, info, dev = _probe(model, data, layers, binarize, threshold, batch_size, device)
    df = report_from_counts(counts, info)
    df.attrs["device"] = str(dev)
    return df

"""A verdict against references as a statistical decision with an interval.

The tested network is one draw; a reference (untrained networks, random
projections) is a distribution over draws. The question each claim asks of a
reference is whether the tested statistic lies beyond what the reference
produces, not whether it differs from the reference's mean. So the interval
is a *prediction* interval of the effect:

    effect = (tested statistic) - (reference statistic)     (oriented: > 0 favours the tested network)

taken over every pair (bootstrap replicate of the tested statistic over its
inputs, reference draw). The tested replicates are centred on the estimate
(the bootstrap over inputs biases plug-in entropies and exponents, see
``stats``; centring keeps its spread and drops its bias). The verdict (our
rule, two-sided 95%):

* ``"holds"`` when the interval lies above 0 (the tested network beats about
  97.5% of reference draws, with its own sampling noise counted);
* ``"does not hold"`` when it lies below 0;
* ``"undecided"`` otherwise.

An exchangeable negative control (a reference draw fed in as if it were the
tested network) therefore says "holds" with probability about 2.5%, whatever
the number of draws; ``claims.calibration`` measures the rates. Next to the
decision, ``mean_effect`` with ``mean_lo``/``mean_hi`` (bootstrap over draws and
inputs) gives the size of the effect against the reference's mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Comparison", "compare", "LEVEL", "DECISIONS"]

LEVEL = 0.95
DECISIONS = ("holds", "undecided", "does not hold")
_MEAN_BOOT = 1000


@dataclass(frozen=True)
class Comparison:
    """The tested statistic against one reference.

    Attributes
    ----------
    reference : name of the reference ("untrained", "projections", ...)
    estimate : the tested statistic
    reference_mean, reference_sd : over the reference draws
    effect_lo, effect_hi : prediction interval of the oriented effect (``LEVEL``)
    mean_effect, mean_lo, mean_hi : oriented effect against the reference mean, with its interval
    quantile : share of reference draws the tested statistic beats
    n_draws, n_boot : reference draws and bootstrap replicates of the tested statistic
    decision : "holds", "undecided" or "does not hold"
    higher_is_better : orientation of the statistic
    """

    reference: str
    estimate: float
    reference_mean: float
    reference_sd: float
    effect_lo: float
    effect_hi: float
    mean_effect: float
    mean_lo: float
    mean_hi: float
    quantile: float
    n_draws: int
    n_boot: int
    decision: str
    higher_is_better: bool

    @property
    def holds(self) -> bool:
        return self.decision == "holds"

    def as_dict(self, nd: int = 6) -> dict:
        return {k: (round(v, nd) if isinstance(v, float) and np.isfinite(v) else
                    (None if isinstance(v, float) else v)) for k, v in asdict(self).items()}


def compare(estimate: float, replicates, reference_values, *, reference: str, higher_is_better: bool = True,
            level: float = LEVEL, seed: int = 0) -> Comparison:
    """Decide whether ``estimate`` lies beyond the reference draws (module docstring).

    Parameters
    ----------
    estimate : the tested statistic
    replicates : bootstrap replicates of it over inputs (any number >= 0; empty: no input noise)
    reference_values : the statistic of each reference draw (non-finite values are
        draws where the statistic does not exist; they count as draws the tested
        network beats, e.g. a reference layer with no power law to fit)
    reference : its name
    higher_is_better : orientation (C1 relevance: True; C2 distance, C3 |mu - 1|: False)
    """
    if not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    est = float(estimate)
    if not np.isfinite(est):
        raise ValueError(f"estimate: expected a finite number, got {estimate!r}")
    ref = np.asarray(reference_values, dtype=float).ravel()
    if ref.size < 2:
        raise ValueError(f"reference_values: need at least 2 reference draws, got {ref.size}")
    reps = np.asarray(replicates, dtype=float).ravel()
    reps = reps[np.isfinite(reps)]
    noise = reps - reps.mean() if reps.size else np.zeros(1)
    sign = 1.0 if higher_is_better else -1.0
    # a draw without the statistic is beaten: put it beyond every tested value
    worst = -np.inf if higher_is_better else np.inf
    ref_f = np.where(np.isfinite(ref), ref, worst)
    effects = sign * ((est + noise)[:, None] - ref_f[None, :])
    a = (1 - level) / 2
    lo, hi = (float(x) for x in np.quantile(effects, [a, 1 - a], method="inverted_cdf"))
    decision = "holds" if lo > 0 else ("does not hold" if hi < 0 else "undecided")
    fin = ref[np.isfinite(ref)]
    rng = np.random.default_rng(seed)
    if fin.size >= 2:
        idx = rng.integers(0, fin.size, (_MEAN_BOOT, fin.size))
        t = est + (rng.choice(noise, _MEAN_BOOT) if noise.size else 0.0)
        boot = sign * (t - fin[idx].mean(axis=1))
        m_lo, m_hi = (float(x) for x in np.quantile(boot, [a, 1 - a]))
        mean_eff, r_mean, r_sd = sign * (est - fin.mean()), float(fin.mean()), float(fin.std(ddof=1))
    else:
        m_lo = m_hi = mean_eff = r_mean = r_sd = float("nan")
    beats = float(np.mean(sign * (est - ref_f) > 0))
    return Comparison(reference=str(reference), estimate=est, reference_mean=r_mean, reference_sd=r_sd,
                      effect_lo=lo, effect_hi=hi, mean_effect=float(mean_eff), mean_lo=m_lo, mean_hi=m_hi,
                      quantile=beats, n_draws=int(ref.size), n_boot=int(reps.size), decision=decision,
                      higher_is_better=bool(higher_is_better))

"""The claims' results as small records with documented attributes: ``claims.C2.vs_null.decision``.

``layers.layer_claims`` returns a ``LayerClaims`` (claim id -> ``ClaimVerdict``),
``rules.verdict`` one ``ClaimVerdict``, ``rules.seed_rule`` a ``SeedVerdict``,
``c4_generation.claim_c4`` a ``GenerationVerdict`` and
``c4_generation.max_relevance_hypothesis`` a ``HypothesisVerdict``. Each is a
frozen dataclass read by attribute; the numbers whose names differ from claim
to claim (what ``as_stated`` and ``vs_null`` hold besides the common fields) are
``Numbers``: read-only dicts whose keys are also attributes
(``c1.as_stated.relevance_peak_depth``, ``c2.vs_null.comparisons["untrained"].quantile``).

Every record is also the dict it replaces: ``record["vs_null"]["decision"]``,
``record.get(...)``, ``dict(record)`` and iteration give the keys and values the
dicts had, and ``record.as_dict()`` is that dict, plain (records, ``Numbers``
and tuples inside become dicts and lists), so results written through
``rr_utils.io`` (which calls ``__json__``) are the same bytes as before the
records existed. ``from_dict`` reads a record back from a results file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = ["Numbers", "ClaimVerdict", "VsReferences", "GenerationVerdict", "HypothesisVerdict", "SeedVerdict",
           "SeedEvidence", "LayerClaims", "plain"]


def plain(value: Any) -> Any:
    """``value`` with every record, ``Numbers`` and dict inside it a plain dict, every tuple a list.

    Parameters
    ----------
    value : object
        A record, a mapping, a list or tuple, or a leaf value.

    Returns
    -------
    object
        The same data as dicts, lists and leaf values (what ``json`` writes of it).
    """
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _numbers(value: Any) -> Any:
    """Dicts in ``value`` (also inside lists) as ``Numbers``; records are kept."""
    if isinstance(value, _Record):
        return value
    if isinstance(value, Mapping):
        return value if isinstance(value, Numbers) else Numbers(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


class Numbers(dict):
    """A read-only dict whose keys are also attributes: ``n.D.mean`` is ``n["D"]["mean"]``.

    Built from any mapping; the dicts inside it (also inside lists) become ``Numbers``
    too. It is a dict, so ``json``, ``pandas`` and ``isinstance(x, dict)`` take it as one;
    writing to it raises ``TypeError``.
    """

    __slots__ = ()

    def __init__(self, data: Mapping | None = None, /, **kw):
        items = dict(data or {}, **kw)
        super().__init__({k: _numbers(v) for k, v in items.items()})

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no {name!r} here; the keys are {sorted(map(str, self))}") from None

    def __dir__(self):
        return [*super().__dir__(), *(k for k in self if isinstance(k, str) and k.isidentifier())]

    def _read_only(self, *args, **kw):
        raise TypeError("Numbers are read-only: build a new dict (dict(n) | {...}) to change one")

    __setitem__ = __delitem__ = __setattr__ = __delattr__ = _read_only
    update = pop = popitem = clear = setdefault = __ior__ = _read_only

    def __reduce__(self):
        return (type(self), (dict(self),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):  # the lists inside are copied; records and Numbers keep their types
        return type(self)({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    def as_dict(self) -> dict:
        """The plain dict (``plain``).

        Returns
        -------
        dict
        """
        return plain(self)


@dataclass(frozen=True, eq=False)
class _Record(Mapping):
    """A frozen dataclass that is also the read-only mapping of its fields (``as_dict``).

    Fields named in ``_OMIT_IF_NONE`` are left out of the mapping when None (keys the
    dict had only sometimes). Equality is a mapping's: a record equals the dict it replaces.
    """

    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):  # dicts become Numbers (and the records of each class's _field_value)
        for f in fields(self):
            object.__setattr__(self, f.name, self._field_value(f.name, getattr(self, f.name)))

    def _keys(self) -> list[str]:
        return [f.name for f in fields(self)
                if not (f.name in self._OMIT_IF_NONE and getattr(self, f.name) is None)]

    def __getitem__(self, key):
        if isinstance(key, str) and key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self):
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def as_dict(self) -> dict:
        """The record as the plain dict it replaces (what the results files hold).

        Returns
        -------
        dict
        """
        return {k: plain(self[k]) for k in self}

    def __json__(self) -> dict:
        return self.as_dict()

    @classmethod
    def from_dict(cls, d: Mapping):
        """The record of a dict of this shape (e.g. read back from a results file).

        Parameters
        ----------
        d : Mapping
            The dict, as ``as_dict`` gives it.

        Returns
        -------
        the record

        Raises
        ------
        ValueError
            If a key of the record is missing or an unknown key is present.
        """
        names = [f.name for f in fields(cls)]
        missing = [k for k in names if k not in d and k not in cls._OMIT_IF_NONE]
        unknown = sorted(set(d) - set(names))
        if missing or unknown:
            raise ValueError(f"{cls.__name__}.from_dict: missing keys {missing}, unknown keys {unknown}")
        return cls(**{k: d.get(k) for k in names})

    @classmethod
    def _field_value(cls, name: str, value):
        return _numbers(value)


@dataclass(frozen=True, eq=False)
class VsReferences(_Record):
    """A claim's verdict against the references, with the numbers behind it (``ClaimVerdict.vs_null``).

    The fields every claim shares; a field is None (and not a key) where the record has
    none (C4's has only its ``rule``). What differs from claim to claim is in ``details``,
    whose keys are keys and attributes of the record itself: C1's ``weak_references``,
    ``control``; C2's ``per_layer``, ``informative_depths``, ``n_informative``,
    ``mean_below_bound_norm_informative``; C3's ``zipf_layer``,
    ``mu_comparisons_reported_only``; ``margin_weak`` ...

    Attributes
    ----------
    rule : str or None
        The rule, in words.
    decision : {"holds", "undecided", "does not hold"} or None
        The decision (``rules.decide``).
    basis : str or None
        Which references decided.
    references : list of str or None
        The references used.
    comparisons : Numbers or None
        Reference name -> ``decision.Comparison.as_dict()`` (``estimate``, ``reference_mean``,
        ``effect_lo``, ``effect_hi``, ``mean_effect``, ``quantile``, ``decision`` ...), as ``Numbers``:
        ``comparisons["untrained"].quantile``.
    checks : Numbers or None
        Check name -> bool, the weak references' checks (and the control network's, C1).
    details : Numbers
        The claim's own numbers.
    """

    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("rule", "decision", "basis", "references", "comparisons", "checks")
    rule: str | None = None
    decision: str | None = None
    basis: str | None = None
    references: list | None = None
    comparisons: Numbers | None = None
    checks: Numbers | None = None
    details: Numbers = field(default_factory=Numbers)

    def __post_init__(self):
        super().__post_init__()
        clash = set(self.details) & {f.name for f in fields(self)}
        if clash:
            raise ValueError(f"VsReferences: details may not repeat the fields {sorted(clash)}")

    def _keys(self) -> list[str]:
        return [k for k in super()._keys() if k != "details"] + list(self.details)

    def __getitem__(self, key):
        if key in self.details:
            return self.details[key]
        return super().__getitem__(key)

    def __getattr__(self, name: str):
        if name.startswith("_") or name == "details":
            raise AttributeError(name)
        try:
            return self.details[name]
        except KeyError:
            raise AttributeError(f"VsReferences has no {name!r}; keys: {sorted(self)}") from None

    @classmethod
    def from_dict(cls, d: Mapping) -> "VsReferences":
        """The record of a ``vs_null`` dict: the shared fields, and the rest as ``details``.

        Parameters
        ----------
        d : Mapping
            The dict.

        Returns
        -------
        VsReferences
        """
        shared = cls._OMIT_IF_NONE
        return cls(**{k: d[k] for k in shared if k in d},
                   details=Numbers({k: v for k, v in d.items() if k not in shared}))


@dataclass(frozen=True, eq=False)
class ClaimVerdict(_Record):
    """One claim (C1, C2, C3) on one network, with both verdicts and the numbers behind each.

    Attributes
    ----------
    id : str
        The claim's id, "C1" ... "C4" (``rules.TEXT``).
    text : str
        The claim, in our words.
    holds_as_stated : bool
        The verdict on the paper's wording, with our tolerances (``rules.TOLERANCES``).
    holds_vs_null : bool or None
        The verdict against the references; None where there is no reference comparison.
    as_stated : Numbers
        The numbers behind ``holds_as_stated`` and its ``rule`` (their names differ per claim:
        C1's ``first_layer_H_s_norm``, ``relevance_peak_depth`` ...; C3's ``zipf_layer_depth``, ``fits`` ...).
    vs_null : VsReferences
        The verdict against the references: ``decision``, ``comparisons`` ...
    note : str
        Free text kept with the record.
    """

    id: str
    text: str
    holds_as_stated: bool
    holds_vs_null: bool | None
    as_stated: Numbers
    vs_null: VsReferences
    note: str

    @classmethod
    def _field_value(cls, name: str, value):
        if name == "vs_null":
            return value if isinstance(value, VsReferences) else VsReferences.from_dict(value)
        return _numbers(value)


@dataclass(frozen=True, eq=False)
class GenerationVerdict(ClaimVerdict):
    """C4 across network seeds at once (``c4_generation.claim_c4``): a ``ClaimVerdict`` and more.

    ``vs_null`` has only its ``rule``: no reference without learning generates.

    Attributes
    ----------
    evidence : Numbers
        The per-seed numbers: ``n_seeds``, ``n_seeds_with_target``, ``seeds_without_target``,
        ``confidence``, ``per_seed``.
    confounded_with_width : int or None
        The Zipf layer's width when it is the same in every seed, else None.
    decision_as_stated : {"holds", "undecided", "does not hold"} or None
        From the interval over seeds of D: "holds" below 0, "does not hold" above, "undecided"
        when it contains 0 (one seed: the point estimate); None (not a key) in older results.
    by_bound_point : Numbers or None
        The same test with the target found without a fit (the layer nearest the bound's Zipf
        point): ``holds``, ``as_stated``, ``evidence``, ``note``, ``same_layer_as_zipf_layer``;
        None (not a key) when no such target was given.
    """

    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("by_bound_point", "decision_as_stated")
    evidence: Numbers
    confounded_with_width: int | None
    decision_as_stated: str | None
    by_bound_point: Numbers | None = None


@dataclass(frozen=True, eq=False)
class HypothesisVerdict(ClaimVerdict):
    """A hypothesis tested like C4 (``c4_generation.max_relevance_hypothesis``).

    Attributes
    ----------
    evidence : Numbers
        The per-seed numbers, as ``GenerationVerdict.evidence``.
    stated_beforehand : bool
        The hypothesis was stated before the test was run.
    decision_as_stated : {"holds", "undecided", "does not hold"} or None
        As ``GenerationVerdict.decision_as_stated``.
    """

    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("decision_as_stated",)
    evidence: Numbers
    stated_beforehand: bool
    decision_as_stated: str | None


@dataclass(frozen=True, eq=False)
class SeedEvidence(_Record):
    """What a claim's verdict across seeds rests on (``SeedVerdict.evidence``).

    Attributes
    ----------
    rule : str
        The seed rule, in words.
    n_seeds : int
        The seeds.
    fraction_as_stated, fraction_vs_null : float or None
        The share of seeds in which each verdict holds (None: some seed has no reference comparison).
    decisions : Numbers
        "holds", "undecided", "does not hold" -> how many seeds decided so.
    effects_over_seeds : Numbers
        Reference name -> ``mean``, ``lo``, ``hi`` (95% t-interval over seeds of the effect
        against it), ``n`` and ``holds`` (seeds where it holds).
    per_seed : list
        The per-seed records (``ClaimVerdict``).
    """

    rule: str
    n_seeds: int
    fraction_as_stated: float | None
    fraction_vs_null: float | None
    decisions: Numbers
    effects_over_seeds: Numbers
    per_seed: list

    @classmethod
    def _field_value(cls, name: str, value):
        if name == "per_seed":
            keys = {f.name for f in fields(ClaimVerdict)}
            return [ClaimVerdict.from_dict(r) if isinstance(r, Mapping) and not isinstance(r, ClaimVerdict)
                    and set(r) == keys else _numbers(r) for r in value]
        return _numbers(value)


@dataclass(frozen=True, eq=False)
class SeedVerdict(_Record):
    """One claim across network seeds (``rules.seed_rule``): an entry of results/claims.json.

    Attributes
    ----------
    id : str
        The claim's id.
    text : str
        The claim, in our words.
    holds_as_stated, holds_vs_null : bool or None
        Each verdict holds if it holds in at least ``rules.MIN_FRACTION`` of the seeds
        (``holds_vs_null``: None if a seed has no reference comparison).
    decision_as_stated : {"holds", "undecided", "does not hold"} or None
        "holds" ("does not hold") when at least that share of seeds holds (fails) as stated,
        else "undecided"; None (not a key) in older results.
    decision_vs_null : {"holds", "undecided", "does not hold"} or None
        "holds" ("does not hold") when at least that share of seeds decides so, else "undecided".
    evidence : SeedEvidence
        The fractions, counts, effects over seeds and the per-seed records.
    """

    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("decision_as_stated",)
    id: str
    text: str
    holds_as_stated: bool
    decision_as_stated: str | None
    holds_vs_null: bool | None
    decision_vs_null: str | None
    evidence: SeedEvidence

    @classmethod
    def _field_value(cls, name: str, value):
        if name == "evidence":
            return value if isinstance(value, SeedEvidence) else SeedEvidence.from_dict(value)
        return _numbers(value)


class LayerClaims(Numbers):
    """Claims C1-C3 on one network (``layers.layer_claims``): claim id -> ``ClaimVerdict``.

    A read-only dict in the order computed; each claim is also an attribute, ``claims.C2``.

    Attributes
    ----------
    C1, C2, C3 : ClaimVerdict
        The claims computed (``which``).
    """

    __slots__ = ()

    def __init__(self, data: Mapping | None = None, /, **kw):
        items = dict(data or {}, **kw)
        dict.__init__(self, {k: v if isinstance(v, ClaimVerdict) else ClaimVerdict.from_dict(v)
                             for k, v in items.items()})

    @classmethod
    def from_dict(cls, d: Mapping) -> "LayerClaims":
        """The records of a ``{"C1": dict, ...}`` as saved in a results file.

        Parameters
        ----------
        d : Mapping
            Claim id -> record dict.

        Returns
        -------
        LayerClaims
        """
        return cls(d)

"""Numbers in sentences: the Jinja2 filters of the docs templates and the notebooks' findings.

The README, the docs pages (``docs/render.py``) and the markdown a notebook
shows after a figure (``rr_utils.notebook.Run.finding``) are Jinja2 templates
fed by results.  These filters turn result values into text, and fail loudly
on a value of the wrong kind rather than print something plausible:

``f(spec)``
    a number in a Python format spec (``f(",d")`` → "8,000", ``f(".3f")``);
    true/false or a missing value is an error.
``verdict`` / ``held``
    true/false as "holds" / "does not hold", "held" / "did not hold".
``count``
    how many values are true.
``span(spec)``
    the range of the values, "0.013–0.017", or one number when all agree.
``either(spec)`` / ``both(spec)``
    the distinct values, sorted: "15 or 20", "15 and 20".
``least`` / ``most``
    min / max, ignoring missing values.
``one(**keys)`` / ``where(**keys)``
    the first element of a list of records whose keys match (an error when
    none does) / all of them; values compare as text, so ``one(units=30)``
    and ``one(units="30")`` agree.
"""

from __future__ import annotations

import jinja2

__all__ = ["FILTERS", "environment", "render"]


def _number(value, spec: str) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"cannot format {value!r} as a number ({spec!r}); use verdict, held or count")
    if spec.endswith("d") and isinstance(value, float) and value.is_integer():
        value = int(value)
    return format(value, spec or "g")


def _values(values, what: str) -> list:
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{what}: expected a list of values, got {values!r}")
    vals = [v for v in values if v is not None]
    if not vals:
        raise ValueError(f"{what}: no values")
    return vals


def _truth(value, words: tuple[str, str], what: str) -> str:
    if not isinstance(value, bool):
        raise ValueError(f"{what}: expected true/false, got {value!r}")
    return words[0] if value else words[1]


def _span(values, spec: str = "g") -> str:
    vals = _values(values, "span")
    lo, hi = _number(min(vals), spec), _number(max(vals), spec)
    return lo if lo == hi else f"{lo}–{hi}"


def _join(values, spec: str, word: str) -> str:
    words = list(dict.fromkeys(_number(v, spec) for v in sorted(_values(values, word))))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {word} " + words[-1]


def _matches(element, keys: dict) -> bool:
    return isinstance(element, dict) and all(str(element.get(k)) == str(v) for k, v in keys.items())


def _where(values, **keys) -> list:
    return [e for e in _values(values, "where") if _matches(e, keys)]


def _one(values, **keys):
    hits = _where(values, **keys)
    if not hits:
        raise ValueError(f"one: no element with {keys}")
    return hits[0]


FILTERS = {
    "f": _number,
    "verdict": lambda v: _truth(v, ("holds", "does not hold"), "verdict"),
    "held": lambda v: _truth(v, ("held", "did not hold"), "held"),
    "count": lambda v: sum(bool(x) for x in v),
    "span": _span,
    "either": lambda v, spec="g": _join(v, spec, "or"),
    "both": lambda v, spec="g": _join(v, spec, "and"),
    "least": lambda v: min(_values(v, "least")),
    "most": lambda v: max(_values(v, "most")),
    "one": _one,
    "where": _where,
}


def environment(**kwargs) -> jinja2.Environment:
    """A Jinja2 environment with :data:`FILTERS`, undefined values as errors and no HTML escaping.

    Parameters
    ----------
    **kwargs
        Passed to :class:`jinja2.Environment` (e.g. ``loader``).

    Returns
    -------
    jinja2.Environment
    """
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False, **kwargs)
    env.filters.update(FILTERS)
    return env


def render(template: str, **context) -> str:
    """``template`` (Jinja2 text) rendered with ``context``.

    Parameters
    ----------
    template : str
        Markdown with ``{{ ... }}`` expressions, e.g. ``"peak at the {{ units }}-unit layer"``.
    **context
        The values the expressions read.

    Returns
    -------
    str
        The text; a missing value or a value of the wrong kind raises (``jinja2.UndefinedError``,
        ``ValueError``) instead of printing a placeholder.
    """
    return environment().from_string(template).render(**context)

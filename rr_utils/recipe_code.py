"""What decides a trained network's bits besides its config and data: the training code.

``compute_sha256()`` hashes the source of ``COMPUTE_FUNCTIONS`` (the functions
that compute the weights and the training history), with docstrings and
comments stripped, read from the files without importing them: it needs no
torch, so the workflow can decide cheaply whether a training job must rerun.
``RECIPE_VERSION`` is bumped for a change the source hash cannot see (e.g. in
a dependency's numerics).  ``rr_utils.models.cache.cache_key`` uses both.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

__all__ = ["RECIPE_VERSION", "COMPUTE_FUNCTIONS", "compute_sha256"]

_PACKAGE = Path(__file__).resolve().parent

RECIPE_VERSION = 2  # 2: the authors' update became the default (config field ``recipe``)

# "module:qualname" of every function whose code decides the bits of a trained network or its history.
COMPUTE_FUNCTIONS = (
    "rr_utils.models.config:RBMConfig.learning_rate",
    "rr_utils.models.config:RBMConfig.momentum",
    "rr_utils.models.config:RBMConfig.checkpoint_schedule",
    "rr_utils.models.rbm:_seed_for",
    "rr_utils.models.rbm:_generator",
    "rr_utils.models.rbm:_deterministic",
    "rr_utils.models.rbm:_as_tensor",
    "rr_utils.models.rbm:RBM.initialise",
    "rr_utils.models.rbm:RBM.hidden_probs",
    "rr_utils.models.rbm:RBM.visible_probs",
    "rr_utils.models.rbm:RBM.reconstruction_error",
    "rr_utils.models.rbm:RBM.pseudo_log_likelihood",
    "rr_utils.models.rbm:RBM.fit_epoch",
    "rr_utils.models.rbm:RBM._fit_epoch_authors",
    "rr_utils.models.rbm:RBM._fit_epoch_classical",
    "rr_utils.models.rbm:_generator_uniform",
    "rr_utils.models.rbm:_bernoulli_draw",
    "rr_utils.models.rbm:_authors_epoch",
    "rr_utils.models.rbm:_authors_step",
    "rr_utils.models.cuda_graphs:graphs_enabled",
    "rr_utils.models.cuda_graphs:uses_graphs",
    "rr_utils.models.cuda_graphs:epoch_runner",
    "rr_utils.models.cuda_graphs:GraphedEpochs",
    "rr_utils.models.rbm:PCDState.initialise",
    "rr_utils.models.training:_propagate",
    "rr_utils.models.training:_monitor",
    "rr_utils.models.training:_monitor_index",
    "rr_utils.models.training:_LazyInputs.get",
    "rr_utils.models.training:_train_all",
    "rr_utils.models.training:_start_layer",
    "rr_utils.models.training:_record",
    "rr_utils.models.training:_train_layer",
)


def _source_path(module: str) -> Path:
    """The source file of ``module``: found in this package without importing it, else by importlib."""
    parts = module.split(".")
    if parts[0] == "rr_utils":
        base = _PACKAGE.joinpath(*parts[1:])
        return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    import importlib.util

    return Path(importlib.util.find_spec(module).origin)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _function_code(name: str) -> str:
    """Code of ``module:Qual.name`` read from the module's source file (not the live object, which a
    test may have monkeypatched), without docstrings and comments (an ast round trip drops both)."""
    module, qualname = name.split(":")
    node = ast.parse(_source_path(module).read_text())
    for part in qualname.split("."):
        found = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == part]
        if not found:
            raise LookupError(f"COMPUTE_FUNCTIONS: {name} not found (renamed? update the list)")
        node = found[0]
    return ast.unparse(_strip_docstrings(node))


def compute_sha256() -> str:
    """sha256 over ``COMPUTE_FUNCTIONS``' code (names included, docstrings and comments excluded)."""
    h = hashlib.sha256()
    for name in COMPUTE_FUNCTIONS:
        h.update(name.encode() + b"\n" + _function_code(name).encode() + b"\n")
    return h.hexdigest()

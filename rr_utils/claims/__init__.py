"""The paper's claims C1-C4 as checks that can fail (docs/paper.md §4), one module per claim.

Every claim gets two verdicts, each with the numbers behind it:

* ``holds_as_stated``: the paper's wording, with our tolerances (``rules.TOLERANCES``);
* ``holds_vs_null``: the effect is larger in the trained network than in
  references that lack learning, measured over many draws (``references``:
  untrained networks of the recipe, random projections of the inputs), decided
  with a 95% interval (``decision``) and calibrated on controls with a known
  answer (``calibration``). The weak references of ``nulls`` (matched random
  states, random stacks) decide, with the margins of ``rules.MARGINS``, only
  when no strong reference is given. ``None`` where no reference comparison exists.

The modules:

* ``rules``: the claims' words, tolerances, margins, the verdict record
  (``rules.verdict``), how references decide (``rules.decide``) and the seed rule
  (``rules.seed_rule``: a verdict holds across seeds if it holds in at least
  ``rules.MIN_FRACTION`` of them);
* ``c1_hierarchy``, ``c2_near_bound``, ``c3_power_laws``: one claim each, as
  stated on a layer table and against the references;
* ``layers``: C1-C3 on one network from its layers' state counts
  (``layers.layer_claims``), intervals and sensitivity;
* ``c4_generation``: C4, which needs the networks (generated digits, scored);
* ``decision``, ``references``, ``nulls``, ``stats``: the comparisons, the strong
  and weak references, and the statistics they use;
* ``calibration``: how often each test says "holds" on controls with a known answer.

This file imports nothing: import the module you need, e.g.
``from rr_utils.claims import layers, rules``.
"""

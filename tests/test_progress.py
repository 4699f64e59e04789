"""Progress bars: when they show, and that they never change a result."""

from __future__ import annotations

import numpy as np
import pytest

from rr_utils.generation import sampling
from rr_utils.progress import in_jupyter_kernel, show_progress


def test_explicit_choice_wins_and_rr_progress_0_turns_the_default_off(monkeypatch):
    monkeypatch.setenv("RR_PROGRESS", "0")
    assert show_progress(None) is False
    assert show_progress(True) is True and show_progress(False) is False
    monkeypatch.delenv("RR_PROGRESS")
    assert not in_jupyter_kernel()  # pytest is no Jupyter kernel
    assert show_progress(None) is False  # and its stderr is captured, not a terminal


def test_generation_with_a_bar_gives_the_same_images(capsys):
    rng = np.random.default_rng(0)
    layers = [(rng.normal(0, 0.3, (16, 8)).astype(np.float32), np.zeros(16, np.float32), np.zeros(8, np.float32)),
              (rng.normal(0, 0.3, (8, 4)).astype(np.float32), np.zeros(8, np.float32), np.zeros(4, np.float32))]
    quiet = sampling.generate_from_layer(layers, 2, n_chains=5, n_steps=30, seed=1, device="cpu", progress=False)
    shown = sampling.generate_from_layer(layers, 2, n_chains=5, n_steps=30, seed=1, device="cpu", progress=True)
    np.testing.assert_array_equal(quiet, shown)
    assert "generating from layer 2" in capsys.readouterr().err  # the bar went to stderr (text: no widget here)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_steps_still_rejected_with_a_bar(bad):
    layers = [(np.zeros((4, 2), np.float32), np.zeros(4, np.float32), np.zeros(2, np.float32))]
    with pytest.raises(ValueError, match="n_steps"):
        sampling.generate_from_layer(layers, 1, n_steps=bad, progress=True)

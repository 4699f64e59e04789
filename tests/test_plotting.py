"""Plot helpers that keep figures readable: labels that do not overprint, widths on depth axes, marks, limits."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rr_utils.plotting import fit_ylim, label_points, mark_layers, width_axis  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set(xlim=(0, 1.05), ylim=(0, 0.6))
    yield ax
    plt.close(fig)


def _boxes(anns):
    """The text of each annotation (not its leader line)."""
    from matplotlib.text import Text

    r = anns[0].figure.canvas.get_renderer()
    for a in anns:
        a.update_positions(r)
    return [Text.get_window_extent(a, r) for a in anns]


def test_coincident_points_share_one_label_and_labels_do_not_overlap(ax):
    x = [1.0, 1.0, 0.9999, 0.5, 0.55, 0.6, 0.2]
    y = [0.0, 0.0, 0.0, 0.3, 0.3, 0.3, 0.1]
    anns = label_points(ax, x, y, ["500", "250", "120", "a long label here", "another long label", "third", "z"])
    texts = [a.get_text() for a in anns]
    assert texts[0] == "500, 250, 120"  # the three widths at (1, 0): one label, not three on top of each other
    assert len(anns) == 5
    boxes = _boxes(anns)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i], texts[j])


def test_label_points_checks_lengths(ax):
    with pytest.raises(ValueError, match="equal lengths"):
        label_points(ax, [0, 1], [0], ["a", "b"])


def test_width_axis_labels_depths_with_widths(ax):
    sizes = (784, 500, 250, 2)
    width_axis(ax, [1, 2, 3], sizes)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["500", "250", "2"]
    assert "width" in ax.get_xlabel()
    with pytest.raises(ValueError, match="depths"):
        width_axis(ax, [0, 1], sizes)


def test_mark_layers_names_the_most_common_layer_and_keeps_coincident_marks_visible(ax):
    sizes = (784, 500, 250, 120, 60)
    mark_layers(ax, {"Zipf layer": [3, 3, 2], "max relevance": [3, None, 3]}, sizes)
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["Zipf layer: 120 units (2/3 seeds)", "max relevance: 120 units (2/2 seeds)"]
    xs = sorted(line.get_xdata()[0] for line in ax.get_lines())
    assert len(set(xs)) == len(xs)  # the second line at depth 3 is shifted, not hidden


def test_fit_ylim_shows_every_point_or_says_where_it_went(ax):
    lo, hi = fit_ylim(ax, [1, 2, 3], [8.5, 1.0, -1.0], include=(0, 1))
    assert lo <= -1.0 and hi >= 8.5 and not ax.texts
    lo, hi = fit_ylim(ax, [1, 2, 3], [30.0, 1.0, np.nan], hi_cap=12)
    assert hi == 12 and [t.get_text() for t in ax.texts] == ["30.0"]

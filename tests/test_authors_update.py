"""The default RBM update equals a plain NumPy transcription of the authors' equations (docs/paper.md §3).

The transcription below follows the written equations literally, in float64: it shares no code
with ``RBM.fit_epoch``.  Both consume the same injected U(0, 1) numbers, in the same order.
"""

import numpy as np
import pytest
import torch

from rr_utils.models import RBM, PCDState, RBMConfig

N_VIS, N_HID, N_EPOCHS = 20, 7, 200


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def authors_minibatch(W, a, b, dW, da, db, P, v_data, epoch, n_epochs, uniforms):
    """One mini-batch of the authors' update, transcribed from the equations."""
    lr = 0.1 if not epoch > 0.9 * n_epochs else 0.1 / (epoch + 1 - 0.9 * n_epochs)
    alpha = 0.5 - 0.1 * epoch if epoch <= 5 else 0.0
    h_data = sigmoid(v_data @ W + b)
    v_neg, h_neg = [], []
    for _ in range(4):  # 4 chains of 25 particles
        h = sigmoid(P @ W + b)
        v_i = sigmoid((next(uniforms) < h).astype(float) @ W.T + a)
        h_i = sigmoid(v_i @ W + b)
        P = sigmoid((next(uniforms) < h_i).astype(float) @ W.T + a)
        v_neg.append(v_i)
        h_neg.append(h_i)
    v_neg, h_neg = np.vstack(v_neg), np.vstack(h_neg)
    grad_W = (v_data.T @ h_data - v_neg.T @ h_neg) / 100
    grad_a = v_data.mean(0) - v_neg.mean(0)
    grad_b = h_data.mean(0) - h_neg.mean(0)
    dW = lr * (grad_W + alpha * dW - 1e-4 * W)
    W = W + dW
    da = lr * (grad_a + alpha * da)
    a = a + da
    db = lr * (grad_b + alpha * db)
    b = b + db
    return W, a, b, dW, da, db, P


@pytest.mark.parametrize("epoch", [0, 3, 190], ids=["first-epoch", "momentum-0.2", "lr-decay"])
def test_default_update_equals_the_transcription(epoch):
    rng = np.random.default_rng(epoch)
    W = rng.normal(0, 0.5, (N_VIS, N_HID))
    a, b = rng.normal(0, 0.1, N_VIS), rng.normal(0, 0.1, N_HID)
    # non-zero velocities, as after earlier mini-batches, so the momentum term is exercised
    dW, da, db = rng.normal(0, 0.01, (N_VIS, N_HID)), rng.normal(0, 0.01, N_VIS), rng.normal(0, 0.01, N_HID)
    P = rng.random((25, N_VIS))
    data = rng.random((230, N_VIS))  # two full mini-batches and a partial one, which the authors drop
    uniforms = [rng.random((25, N_HID)) for _ in range(2 * 8)]

    ref = (W, a, b, dW, da, db, P)
    feed = iter(uniforms)
    for s in (0, 100):
        ref = authors_minibatch(*ref, data[s:s + 100], epoch, N_EPOCHS, feed)
    assert next(feed, None) is None

    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    rbm = RBM(t(W), t(a), t(b))
    state = PCDState((t(dW), t(da), t(db)), t(P), torch.Generator())
    queue = iter(uniforms)

    def injected(shape):
        u = next(queue)
        assert u.shape == shape
        return t(u)

    config = RBMConfig(epochs=N_EPOCHS)
    assert config.recipe == "authors"  # the default
    rbm.fit_epoch(t(data), epoch, config, state, uniform=injected)
    assert next(queue, None) is None  # every injected number used, no other draw

    ours = (rbm.W, rbm.vbias, rbm.hbias, *state.velocity, state.particles)
    for name, x, y in zip(("W", "a", "b", "dW", "da", "db", "particles"), ours, ref):
        assert x.dtype == torch.float64
        np.testing.assert_allclose(x.numpy(), y, rtol=0, atol=1e-6, err_msg=name)
        assert np.abs(x.numpy() - y).max() < 1e-12, name  # float64 against float64: far below 1e-6


def test_transcription_detects_the_classical_update():
    """The comparison can fail: the classical update moves the weights elsewhere."""
    rng = np.random.default_rng(1)
    W = rng.normal(0, 0.5, (N_VIS, N_HID))
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    zeros = (np.zeros((N_VIS, N_HID)), np.zeros(N_VIS), np.zeros(N_HID))
    P, data = rng.random((25, N_VIS)), rng.random((100, N_VIS))
    uniforms = iter([rng.random((25, N_HID)) for _ in range(8)])
    ref = authors_minibatch(W, zeros[1], zeros[2], *zeros, P, data, 0, N_EPOCHS, uniforms)
    rbm = RBM(t(W), t(zeros[1]), t(zeros[2]))
    state = PCDState(tuple(t(z) for z in zeros), t(P), torch.Generator().manual_seed(0))
    rbm.fit_epoch(t(data), 0, RBMConfig(epochs=N_EPOCHS, recipe="classical"), state)
    assert np.abs(rbm.W.numpy() - ref[0]).max() > 1e-3


def test_recipe_options_are_checked():
    with pytest.raises(ValueError, match="recipe"):
        RBMConfig(recipe="theano")
    with pytest.raises(ValueError, match="classical recipe only"):
        RBMConfig(negative_visible="samples")
    RBMConfig(recipe="classical", negative_visible="samples")  # the tutorial's variant stays available
    rbm = RBM(torch.zeros(3, 2), torch.zeros(3), torch.zeros(2))
    state = PCDState((torch.zeros(3, 2), torch.zeros(3), torch.zeros(2)), torch.rand(25, 3), torch.Generator())
    with pytest.raises(ValueError, match="authors' recipe only"):
        rbm.fit_epoch(torch.rand(100, 3), 0, RBMConfig(recipe="classical"), state, uniform=lambda s: torch.rand(s))

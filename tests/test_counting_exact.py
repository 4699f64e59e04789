"""Exactness of the fast state counter on adversarial inputs (hash collisions forced,
chunk boundaries, padding bits), checked against collision-free exact methods."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from rr_utils import entropy as E


def _exact(states):
    """A Counter over the rows' bytes: the slow, obviously exact reference."""
    return sorted(collections.Counter(map(bytes, np.packbits(np.asarray(states, bool), axis=1))).values())


def _zipf_states(M, n, n_patterns, seed):
    rng = np.random.default_rng(seed)
    pool = rng.random((n_patterns, n)) < 0.5
    ids = np.minimum(rng.zipf(1.6, M), n_patterns) - 1
    return pool[ids]


@pytest.mark.parametrize("n", [65, 67, 129, 500])
def test_many_chunks_match_np_unique(n):
    # more rows than one packing / hashing / verification chunk, odd widths
    s = _zipf_states(3 * E._CHUNK_ROWS * 4 + 17, n, 700, seed=n)
    assert sorted(E.state_counts(s).tolist()) == _exact(s)


@pytest.mark.parametrize("bucket", [lambda w: w[:, 0] & np.uint64(3),      # few buckets, all mixed
                                    lambda w: w[:, -1] & np.uint64(1),     # depends on the last word only
                                    lambda w: np.zeros(w.shape[0], np.uint64)])
def test_partial_collisions_are_resolved(monkeypatch, bucket):
    """Different rows share a hash while equal rows repeat: counts stay exact."""
    monkeypatch.setattr(E, "_hash_words", bucket)
    s = _zipf_states(5000, 130, 300, seed=1)
    assert sorted(E.state_counts(s).tolist()) == _exact(s)


def test_collision_only_among_rare_rows_is_caught(monkeypatch):
    """A single colliding pair hidden among many repeated rows is still found."""
    s = _zipf_states(20000, 200, 500, seed=2)
    real = E._hash_words

    def one_collision(w):
        h = real(w)
        h[-1] = h[0]  # the last row gets the first row's hash
        return h

    s[-1] = ~s[0]  # ... and is a different row
    monkeypatch.setattr(E, "_hash_words", one_collision)
    assert sorted(E.state_counts(s).tolist()) == _exact(s)


def test_streaming_counter_exact_under_collisions(monkeypatch):
    monkeypatch.setattr(E, "_hash_words", lambda w: w[:, 0] & np.uint64(7))
    s = _zipf_states(3000, 100, 200, seed=3)
    c = E.StateCounter()
    for i in range(0, len(s), 256):
        c.update(s[i:i + 256])
    assert sorted(c.counts().tolist()) == _exact(s)
    assert c.M == len(s)


def test_all_distinct_and_all_equal():
    rng = np.random.default_rng(4)
    d = rng.random((40000, 100)) < 0.5
    assert E.state_counts(d).tolist() == [1] * 40000
    same = np.repeat(d[:1], 40000, axis=0)
    assert E.state_counts(same).tolist() == [40000]


def test_rows_differing_only_near_word_and_chunk_edges():
    n = 200
    rows = np.zeros((n, n), bool)
    rows[np.arange(n), np.arange(n)] = True  # unit vectors: one bit in each position
    s = np.concatenate([rows] * 3 + [np.zeros((1, n), bool)])
    counts = E.state_counts(s)
    assert sorted(counts.tolist()) == [1] + [3] * n
    assert sorted(counts.tolist()) == sorted(collections.Counter(map(bytes, s.view(np.uint8))).values())

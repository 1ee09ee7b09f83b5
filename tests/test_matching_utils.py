import numpy as np
import pytest
from reference import bipartite_greedy

from ssd_keras.boxes.matching import match_bipartite_greedy, match_bipartite_greedy_batch, match_multi


def test_bipartite_by_hand():
    # Box 1's best is anchor 0 (0.8), the highest in the matrix: it goes first.
    # Box 0 then takes its best free anchor, 1 (0.6).
    weights = [[0.7, 0.6, 0.1], [0.8, 0.2, 0.0]]
    np.testing.assert_array_equal(match_bipartite_greedy(weights), [1, 0])


def test_box_without_overlap_does_not_steal_box_0s_anchor():
    # The original returned [0, 0]: box 1 overlapped nothing and overwrote box 0's match.
    np.testing.assert_array_equal(match_bipartite_greedy([[0.2, 0.9, 0.1], [0.0, 0.0, 0.0]]), [1, 0])


def test_ties_go_to_the_first_index():
    np.testing.assert_array_equal(match_bipartite_greedy([[0.5, 0.5], [0.5, 0.5]]), [0, 1])


@pytest.mark.parametrize("seed", range(8))
def test_bipartite_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(1, 8), rng.integers(8, 30)
    weights = rng.uniform(0, 1, (m, n))
    weights[rng.uniform(size=(m, n)) < 0.5] = 0.0  # many zeros: conflicts and all-zero rows
    weights = np.round(weights, 1)  # many ties
    np.testing.assert_array_equal(match_bipartite_greedy(weights), bipartite_greedy(weights))


def test_batch_matches_per_item_and_ignores_padding(rng):
    weights = np.round(rng.uniform(0, 1, (4, 5, 12)), 1)
    n_valid = np.array([5, 2, 0, 3])
    matches = match_bipartite_greedy_batch(weights, n_valid)
    for b in range(4):
        np.testing.assert_array_equal(matches[b, : n_valid[b]], bipartite_greedy(weights[b, : n_valid[b]]))
        assert np.all(matches[b, n_valid[b] :] == -1)


def test_match_multi_by_hand():
    weights = np.array([[0.6, 0.2, 0.5, 0.0], [0.7, 0.4, 0.1, 0.0]])
    gt, anchors = match_multi(weights, threshold=0.5)
    np.testing.assert_array_equal(anchors, [0, 2])  # 0.4 and 0.0 are below the threshold
    np.testing.assert_array_equal(gt, [1, 0])
    gt, anchors = match_multi(np.zeros((0, 3)), 0.5)
    assert gt.size == 0 and anchors.size == 0


def test_errors():
    with pytest.raises(ValueError, match="at least as many anchors"):
        match_bipartite_greedy(np.ones((3, 2)))
    with pytest.raises(ValueError, match="2-D weight matrix"):
        match_bipartite_greedy(np.ones(3))
    with pytest.raises(ValueError, match="2-D weight matrix"):
        match_multi(np.ones(3), 0.5)

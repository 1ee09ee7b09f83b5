"""Matching ground-truth boxes to anchors (Liu et al. 2016, §2.2 "Matching strategy").

First every ground-truth box gets the one anchor it overlaps most ("bipartite",
done greedily as in the original), so that no object is left without a
positive; then ("multi") every remaining anchor whose best overlap reaches a
threshold is matched to that ground-truth box too.
"""

import numpy as np


def greedy_bipartite_from_best(best_anchor, best_value, n_valid, row_fn):
    """Greedy bipartite matching driven by each ground-truth box's best anchor.

    Per image, repeat: among the unmatched ground-truth boxes take the one whose best
    free anchor has the highest weight, and match the two. Ties go to the lower index
    (first ground-truth box, then first anchor), as `np.argmax` does.

    A box's best free anchor only changes when that anchor is taken by another box, so
    `row_fn` is asked for a box's full weight row only then (rare), not on every step.

    Args:
        best_anchor: int array (batch, m): each box's best anchor over all anchors
            (lowest index among ties).
        best_value: array (batch, m): the weight of that anchor.
        n_valid: int array (batch,): item b uses boxes ``0 .. n_valid[b] - 1``.
        row_fn: ``row_fn(b, j)`` returns box j's weights against all n anchors of item b.

    Returns:
        int array (batch, m): the anchor matched to each box, -1 for padding.
    """
    best_anchor = np.array(best_anchor, dtype=np.int64)
    best_value = np.array(best_value, dtype=np.float64)
    batch, m = best_anchor.shape
    n_valid = np.asarray(n_valid, dtype=np.int64)
    matches = np.full((batch, m), -1, dtype=np.int64)
    done = np.arange(m)[None, :] >= n_valid[:, None]  # padding counts as done
    taken = {}
    rows = np.arange(batch)
    for _ in range(int(n_valid.max(initial=0))):
        gt = np.where(done, -np.inf, best_value).argmax(axis=1)
        items = np.flatnonzero(~done[rows, gt])
        if items.size == 0:
            break
        gts = gt[items]
        anchors = best_anchor[items, gts]
        matches[items, gts] = anchors
        done[items, gts] = True
        for b, a in zip(items.tolist(), anchors.tolist()):
            taken.setdefault(b, []).append(a)
        # Boxes whose best anchor was just taken look again among the free anchors.
        conflicts = (~done[items]) & (best_anchor[items] == anchors[:, None])
        for k, j in zip(*np.nonzero(conflicts)):
            b = items[k]
            row = np.array(row_fn(b, j), dtype=np.float64)
            row[taken[b]] = -np.inf
            best_anchor[b, j] = row.argmax()
            best_value[b, j] = row[best_anchor[b, j]]
    return matches


def match_bipartite_greedy_batch(weight_matrix, n_valid):
    """`match_bipartite_greedy` for a batch of padded (batch, m, n) weight matrices.

    Item b uses rows ``0 .. n_valid[b] - 1``; returns (batch, m) anchor indices, -1
    for padding rows.
    """
    weights = np.asarray(weight_matrix)
    if weights.shape[1] == 0 or weights.shape[0] == 0:
        return np.full(weights.shape[:2], -1, dtype=np.int64)
    best_anchor = weights.argmax(axis=2)
    best_value = np.take_along_axis(weights, best_anchor[..., None], axis=2)[..., 0]
    return greedy_bipartite_from_best(best_anchor, best_value, n_valid, lambda b, j: weights[b, j])


def match_bipartite_greedy(weight_matrix):
    """Matches every ground-truth box (row) to a distinct anchor (column), greedily.

    Repeatedly takes the ground-truth box whose best still-free anchor has the highest
    weight and matches the two; ties go to the lower index.

    Unlike the original, a box that overlaps no free anchor at all takes the first
    free anchor instead of overwriting the match of box 0: for ``[[.2, .9, .1],
    [0, 0, 0]]`` the result is ``[1, 0]``, not ``[0, 0]``.

    Args:
        weight_matrix: array (m, n) with ``m <= n``, e.g. IoU of m ground-truth boxes
            with n anchors.

    Returns:
        int array (m,) of distinct anchor indices.

    Raises:
        ValueError: if the matrix is not 2-D or has more rows than columns.
    """
    weights = np.asarray(weight_matrix, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"Expected a 2-D weight matrix. Received: shape={weights.shape}")
    m, n = weights.shape
    if m > n:
        raise ValueError(
            f"Bipartite matching needs at least as many anchors (columns) as ground-truth boxes (rows). "
            f"Received: {m} boxes, {n} anchors"
        )
    return match_bipartite_greedy_batch(weights[None], np.array([m]))[0]


def match_multi(weight_matrix, threshold):
    """Matches every anchor (column) to its best ground-truth box if the weight is >= `threshold`.

    Args:
        weight_matrix: array (m, n).
        threshold: minimum weight for a match.

    Returns:
        ``(gt_indices, anchor_indices)``: int arrays of equal length.
    """
    weights = np.asarray(weight_matrix)
    if weights.ndim != 2:
        raise ValueError(f"Expected a 2-D weight matrix. Received: shape={weights.shape}")
    if weights.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    gt_indices = weights.argmax(axis=0)
    overlaps = weights[gt_indices, np.arange(weights.shape[1])]
    anchor_indices = np.flatnonzero(overlaps >= threshold)
    return gt_indices[anchor_indices], anchor_indices

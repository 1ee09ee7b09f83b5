"""Slow, obvious reference implementations, written as loops, for the vectorized code.

They follow the original ssd_keras algorithms step by step (with the documented bug
fixes), one box, one anchor, one image at a time. Tests compare the fast code against
them on seeded inputs.
"""

import numpy as np

from ssd_keras.boxes.layout import ANCHORS, OFFSETS, VARIANCES


def box_iou(a, b, d=0.0):
    """IoU of two corner boxes (xmin, ymin, xmax, ymax) with border offset d."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + d)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + d)
    inter = iw * ih
    union = (a[2] - a[0] + d) * (a[3] - a[1] + d) + (b[2] - b[0] + d) * (b[3] - b[1] + d) - inter
    return inter / union if union > 0 else 0.0


def to_corners(box, coords):
    if coords == "corners":
        return list(box)
    if coords == "minmax":
        return [box[0], box[2], box[1], box[3]]
    cx, cy, w, h = box
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def from_corners(box, coords, d=0.0):
    xmin, ymin, xmax, ymax = box
    if coords == "corners":
        return [xmin, ymin, xmax, ymax]
    if coords == "minmax":
        return [xmin, xmax, ymin, ymax]
    return [(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin + d, ymax - ymin + d]


def bipartite_greedy(weights):
    """The original greedy loop, with the fix: only free anchors and unmatched boxes count.

    Each round: every unmatched box finds its best free anchor (first index among ties);
    the box with the highest such value (first box among ties) takes it.
    """
    weights = np.array(weights, dtype=float)
    m, n = weights.shape
    matches = [-1] * m
    free = [True] * n
    for _ in range(m):
        best = None  # (value, box, anchor)
        for j in range(m):
            if matches[j] != -1:
                continue
            row_best = None
            for a in range(n):
                if free[a] and (row_best is None or weights[j, a] > weights[j, row_best]):
                    row_best = a
            if best is None or weights[j, row_best] > best[0]:
                best = (weights[j, row_best], j, row_best)
        _, j, a = best
        matches[j] = a
        free[a] = False
    return np.array(matches)


def encode_image(
    labels,
    anchors,
    n_classes,
    coords,
    normalize,
    img_h,
    img_w,
    variances,
    matching_type,
    pos_thr,
    neg_limit,
    border_pixels,
    background_id=0,
):
    """Targets for one image, anchor by anchor. `anchors`: (n, 4) in `coords`."""
    d = {"half": 0.0, "include": 1.0, "exclude": -1.0}[border_pixels]
    n = len(anchors)
    out = np.zeros((n, n_classes + 12))
    out[:, background_id] = 1.0
    out[:, ANCHORS] = anchors
    out[:, VARIANCES] = variances
    labels = np.asarray(labels, dtype=float).reshape(-1, 5)
    if len(labels) == 0:
        return out
    gts = []
    for row in labels:
        box = list(row[1:5])
        if normalize:
            box = [box[0] / img_w, box[1] / img_h, box[2] / img_w, box[3] / img_h]
        gts.append(from_corners(box, coords, d))
    sim = np.zeros((len(gts), n))
    for j, g in enumerate(gts):
        for a in range(n):
            sim[j, a] = box_iou(to_corners(g, coords), to_corners(anchors[a], coords), d)
    matched = {}
    for j, a in enumerate(bipartite_greedy(sim)):
        matched[a] = j
    best_iou = sim.max(axis=0)
    best_gt = sim.argmax(axis=0)
    if matching_type == "multi":
        for a in range(n):
            if a not in matched and best_iou[a] >= pos_thr:
                matched[a] = best_gt[a]
    for a in range(n):
        if a not in matched and best_iou[a] >= neg_limit:
            out[a, background_id] = 0.0
    for a, j in matched.items():
        out[a, :n_classes] = 0.0
        out[a, int(labels[j, 0])] = 1.0
        g, an = gts[j], anchors[a]
        if coords == "centroids":
            off = [(g[0] - an[0]) / an[2], (g[1] - an[1]) / an[3], np.log(g[2] / an[2]), np.log(g[3] / an[3])]
        elif coords == "corners":
            w, h = an[2] - an[0], an[3] - an[1]
            off = [(g[0] - an[0]) / w, (g[1] - an[1]) / h, (g[2] - an[2]) / w, (g[3] - an[3]) / h]
        else:
            w, h = an[1] - an[0], an[3] - an[2]
            off = [(g[0] - an[0]) / w, (g[1] - an[1]) / w, (g[2] - an[2]) / h, (g[3] - an[3]) / h]
        out[a, OFFSETS] = np.array(off) / np.array(variances)
    return out


def greedy_nms(rows, score_col, iou_threshold, d=0.0):
    """The original loop: take the best, drop what overlaps it by more than the threshold."""
    rows = [list(r) for r in rows]
    kept = []
    while rows:
        i = max(range(len(rows)), key=lambda k: (rows[k][score_col], -k))
        best = rows.pop(i)
        kept.append(best)
        rows = [r for r in rows if box_iou(best[-4:], r[-4:], d) <= iou_threshold]
    return kept


def decode_image(pred, conf_thresh, iou_threshold, top_k, img_h, img_w, fast=False, d=0.0):
    """The original decode_detections(_fast) for one image of a centroids, normalized model,
    with results sorted by confidence."""
    n_classes = pred.shape[1] - 12
    boxes = []
    for row in pred:
        off, anc, var = row[OFFSETS], row[ANCHORS], row[VARIANCES]
        cx = off[0] * var[0] * anc[2] + anc[0]
        cy = off[1] * var[1] * anc[3] + anc[1]
        w = np.exp(off[2] * var[2]) * anc[2]
        h = np.exp(off[3] * var[3]) * anc[3]
        boxes.append([(cx - w / 2) * img_w, (cy - h / 2) * img_h, (cx + w / 2) * img_w, (cy + h / 2) * img_h])
    detections = []
    if fast:
        rows = []
        for a, row in enumerate(pred):
            c = int(np.argmax(row[:n_classes]))
            if c != 0 and row[c] > conf_thresh:
                rows.append([c, row[c]] + boxes[a])
        detections = greedy_nms(rows, 1, iou_threshold, d)
    else:
        for c in range(1, n_classes):
            rows = [[row[c]] + boxes[a] for a, row in enumerate(pred) if row[c] > conf_thresh]
            detections += [[c] + r for r in greedy_nms(rows, 0, iou_threshold, d)]
    detections.sort(key=lambda r: -r[1])
    if top_k != "all":
        detections = detections[:top_k]
    return np.array(detections, dtype=float).reshape(-1, 6)


def ssd_loss_total(y_true, y_pred, neg_pos_ratio=3, n_neg_min=0, alpha=1.0):
    """The batch's SSD loss as Keras reports it (mean of the per-image values), by loops."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    batch, n_boxes = y_true.shape[:2]
    n_pos = 0.0
    total = 0.0
    negative_losses = []
    for i in range(batch):
        for j in range(n_boxes):
            truth, pred = y_true[i, j], y_pred[i, j]
            class_loss = -sum(t * np.log(max(p, 1e-15)) for t, p in zip(truth[:-12], pred[:-12]))
            if max(truth[1:-12]) > 0:
                n_pos += max(truth[1:-12])
                d = np.abs(truth[OFFSETS] - pred[OFFSETS])
                loc = sum(0.5 * v * v if v < 1 else v - 0.5 for v in d)
                total += class_loss + alpha * loc
            elif truth[0] > 0 and class_loss * truth[0] != 0:
                negative_losses.append(class_loss * truth[0])
    keep = min(max(neg_pos_ratio * int(n_pos), n_neg_min), len(negative_losses))
    total += sum(sorted(negative_losses, reverse=True)[:keep])
    return total / max(1.0, n_pos)


def voc_devkit_ap(detections, ground_truth, use_07_metric=True, min_overlap=0.5):
    """One class's AP by the rules of the Pascal VOC devkit (VOCevaldet.m), by loops.

    detections: list of (image_id, confidence, xmin, ymin, xmax, ymax).
    ground_truth: dict image_id -> list of (xmin, ymin, xmax, ymax, difficult).
    """
    detections = sorted(detections, key=lambda d: -d[1])  # stable, like MATLAB's sort
    n_positive = sum(1 for boxes in ground_truth.values() for box in boxes if not box[4])
    detected = {image: [False] * len(boxes) for image, boxes in ground_truth.items()}
    tp, fp = [], []
    for image, _, *bb in detections:
        ovmax, jmax = -np.inf, -1
        for j, gt in enumerate(ground_truth.get(image, [])):
            iw = min(bb[2], gt[2]) - max(bb[0], gt[0]) + 1
            ih = min(bb[3], gt[3]) - max(bb[1], gt[1]) + 1
            if iw > 0 and ih > 0:
                ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (gt[2] - gt[0] + 1) * (gt[3] - gt[1] + 1) - iw * ih
                ov = iw * ih / ua
                if ov > ovmax:
                    ovmax, jmax = ov, j
        if ovmax >= min_overlap:
            if ground_truth[image][jmax][4]:
                tp.append(0)
                fp.append(0)
            elif not detected[image][jmax]:
                detected[image][jmax] = True
                tp.append(1)
                fp.append(0)
            else:
                tp.append(0)
                fp.append(1)
        else:
            tp.append(0)
            fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = tp / n_positive
        prec = tp / (tp + fp)
    prec = np.nan_to_num(prec, nan=0.0)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0, 1.1, 0.1):
            p = prec[rec >= t].max() if np.any(rec >= t) else 0.0
            ap += p / 11
        return ap
    mrec = np.concatenate([[0], rec, [1]])
    mpre = np.concatenate([[0], prec, [0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))

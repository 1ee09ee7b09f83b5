"""What `DecodeDetections` and `DecodeDetectionsFast` share: arguments, validation,
config, decoding the packed output into corner boxes, and the greedy NMS, all in
`keras.ops`, so the layers run in the graph on TensorFlow, JAX and PyTorch, eagerly
and under `jit_compile`.

The decoding rule is the one stated in `ssd_keras.encoding.output_decoder` (the
box formulas those of `ssd_keras.boxes.coding`); parity tests check the
layers against the NumPy decoders on the same raw predictions, on every backend.

How the NMS is exact with static shapes
---------------------------------------
Greedy NMS keeps a candidate iff no better kept candidate suppresses it. Per-class NMS
followed by the global top-k is therefore one greedy pass over all (anchor, class)
candidates in descending score, where a kept box suppresses only boxes of its own
class, stopped once `top_k` boxes are kept. `greedy_nms` makes that pass in blocks of
`NMS_BLOCK` candidates of fixed size: the boxes kept in earlier blocks drop the ones
they suppress, the rest of the block settle together as a fixed point, and the pass
ends after the block in which every image reached `top_k` (or ran out of candidates).
A class that reaches `nms_max_output_size` kept boxes keeps no more (per-class NMS
would stop there).

Ties go to the lower candidate number (anchor-major, then class), as in the NumPy
decoders: candidates are sorted stably by score from increasing number.

The pass first runs on the best ``max(4 * top_k, 1024)`` candidates only (almost
always enough). Their result is that of the full set unless the pass ran short of
candidates while others were left out, or its last kept box scores no more than the
worst candidate taken in (a tie at the cut could hide a lower-numbered twin); then, for
that batch, the pass runs again on every candidate. Both branches have static shapes,
so this is one `ops.cond`.
"""

import keras
from keras import ops

from ssd_keras.boxes.geometry import COORDS, check_one_of
from ssd_keras.boxes.layout import ANCHORS, CLASSES, MIN_CHANNELS, N_BOX_CHANNELS, OFFSETS, VARIANCES
from ssd_keras.encoding.decoding_config import DECODING
from ssd_keras.utils.backend import scalar_like

# Candidates the loop first runs on: max(SUBSET_PER_KEPT * top_k, SUBSET_MIN), as the NumPy decoders do.
SUBSET_PER_KEPT = 4
SUBSET_MIN = 1024
# Candidates settled together by the NMS (see `greedy_nms`).
NMS_BLOCK = 128


def decode_corners(y_pred, coords, normalize_coords, img_height, img_width):
    """Absolute ``(xmin, ymin, xmax, ymax)`` boxes from the packed tensor.

    Args:
        y_pred: float32 tensor (batch, n_boxes, n_classes + 1 + 12).
        coords, normalize_coords, img_height, img_width: as for the layers.

    Returns:
        tensor (batch, n_boxes, 4).
    """
    offsets = y_pred[..., OFFSETS] * y_pred[..., VARIANCES]
    anchors = y_pred[..., ANCHORS]
    if coords == "centroids":
        cx = offsets[..., 0] * anchors[..., 2] + anchors[..., 0]
        cy = offsets[..., 1] * anchors[..., 3] + anchors[..., 1]
        w = ops.exp(offsets[..., 2]) * anchors[..., 2]
        h = ops.exp(offsets[..., 3]) * anchors[..., 3]
        boxes = ops.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)
    elif coords == "corners":
        w = anchors[..., 2] - anchors[..., 0]
        h = anchors[..., 3] - anchors[..., 1]
        boxes = offsets * ops.stack([w, h, w, h], axis=-1) + anchors
    else:  # minmax: (xmin, xmax, ymin, ymax)
        w = anchors[..., 1] - anchors[..., 0]
        h = anchors[..., 3] - anchors[..., 2]
        minmax = offsets * ops.stack([w, w, h, h], axis=-1) + anchors
        boxes = ops.stack([minmax[..., 0], minmax[..., 2], minmax[..., 1], minmax[..., 3]], axis=-1)
    if normalize_coords:
        scale = (img_width, img_height, img_width, img_height)
        boxes = ops.stack([boxes[..., i] * factor for i, factor in enumerate(scale)], axis=-1)
    return boxes


def first_max(values, axis=-1):
    """Position of the first maximum along `axis` (backends differ on ties in argmax)."""
    size = values.shape[axis]
    best = ops.max(values, axis=axis, keepdims=True)
    positions = ops.arange(0, size, dtype="int32")
    return ops.min(ops.where(values == best, positions, scalar_like(size, positions)), axis=axis)


def batch_gather(values, indices):
    """``values[b, indices[b, ...]]`` for values (batch, n, ...) and int32 indices (batch, k).

    One `take` from the batch laid end to end: `take_along_axis` casts the indices to
    int64 on TensorFlow, whose oneDNN build then falls back to Eigen for their transpose
    (and says so on stderr in every process)."""
    n = values.shape[1]
    flat = ops.reshape(values, (-1,) + tuple(values.shape[2:]))
    # Each row's number, 0 to batch - 1, without an `arange` of the batch size (a symbolic
    # dimension when the model is exported with a dynamic batch).
    rows = ops.cumsum(ops.ones_like(indices[:, :1]), axis=0) - 1
    return ops.take(flat, indices + rows * n, axis=0)


def _iou(first, second):
    """IoU of every pair of boxes (batch, m, 4) x (batch, n, 4) -> (batch, m, n), as
    `ssd_keras.boxes.geometry.iou_corners` with border 'half' (a pair whose union is not
    positive has IoU 0)."""
    a, b = first[:, :, None, :], second[:, None, :, :]
    zero = scalar_like(0.0, first)
    width = ops.maximum(zero, ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]))
    height = ops.maximum(zero, ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]))
    intersection = width * height
    union = (
        (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
        + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        - intersection
    )
    return ops.where(union > 0, intersection / ops.where(union > 0, union, scalar_like(1.0, union)), zero)


def _place(mask, slots, max_kept):
    """(batch, n, max_kept) bool: item i goes to output slot j (`mask[i]` and ``slots[i] == j``)."""
    return mask[:, :, None] & (slots[:, :, None] == ops.arange(0, max_kept, dtype="int32")[None, None, :])


def _pick(place, values):
    """What `_place` puts in each slot: (batch, n[, 4]) values -> (batch, max_kept[, 4]).

    A sum of masked values rather than a matrix product, which would turn an infinite
    box coordinate elsewhere into NaN (0 * inf)."""
    if len(values.shape) == 2:
        return ops.sum(ops.where(place, values[:, :, None], ops.zeros((), values.dtype)), axis=1)
    return ops.sum(ops.where(place[..., None], values[:, :, None, :], ops.zeros((), values.dtype)), axis=1)


def _outside_torch_compile(function):
    """`function`, run eagerly when PyTorch's `torch.compile` (``jit_compile=True`` on the
    torch backend) traces its caller: its loop ends on a value computed on the device,
    which torch.compile would cut into a new graph, and compile again, at every turn.
    The other backends trace the loop into the graph (`ops.while_loop`)."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if keras.backend.backend() == "torch":
            import torch

            # (Not while `torch.export` traces: an exported loop must be in the graph.)
            if torch.compiler.is_compiling() and not torch.compiler.is_exporting():
                return torch.compiler.disable(function)(*args, **kwargs)
        return function(*args, **kwargs)

    return wrapper


@_outside_torch_compile
def greedy_nms(scores, boxes, labels, iou_threshold, max_kept, max_per_label=None, n_labels=1):
    """Greedy NMS over candidates in processing order (descending score, ties decided).

    Candidates are taken in blocks of `NMS_BLOCK`. Within a block, the boxes that the
    boxes kept so far suppress are dropped, and the rest are settled as the fixed point
    of ``keep[i] = alive[i] and no kept j < i of the block suppresses i``, iterated
    from "keep all": each turn settles at least one more box, and in practice the
    longest chain of suppressions, a few turns, is enough. The loop over blocks stops
    once every image has `max_kept` boxes or no candidates are left, so a handful of
    blocks usually suffice; all steps are matrix operations of fixed shape.

    Args:
        scores: float32 (batch, n), non-increasing along each row; ``-inf`` marks the
            positions that are no candidates (they come last).
        boxes: float32 (batch, n, 4) corners.
        labels: int32 (batch, n) in ``[0, n_labels)``; a box suppresses only boxes of its
            label (greedy NMS per label).
        iou_threshold: a box is suppressed by a kept box with IoU strictly above this.
        max_kept: the most boxes kept per image (a Python int).
        max_per_label: the most boxes kept per label (None: no limit); per-label NMS
            stops there.
        n_labels: number of labels (for `max_per_label`).

    Returns:
        (positions, count): int32 (batch, max_kept) positions of the kept boxes in
        processing order, padded with 0, and int32 (batch,) how many are kept.
    """
    batch = ops.shape(scores)[0]
    n = scores.shape[1]
    size = min(NMS_BLOCK, n)
    n_blocks = -(-n // size)
    pad = n_blocks * size - n
    if pad:  # (filled by concatenation: `ops.pad` makes a Keras operation, which `torch.cond` cannot trace)
        filler = ops.zeros_like(scores[:, :pad]) + scalar_like(float("-inf"), scores)
        scores = ops.concatenate([scores, filler], axis=1)
        boxes = ops.concatenate([boxes, ops.zeros_like(boxes[:, :pad])], axis=1)
        labels = ops.concatenate([labels, ops.zeros_like(labels[:, :pad])], axis=1)
    blocks = (
        ops.reshape(scores, (batch, n_blocks, size)),
        ops.reshape(boxes, (batch, n_blocks, size, 4)),
        ops.reshape(labels, (batch, n_blocks, size)),
    )
    numbers = ops.arange(0, size, dtype="int32")
    earlier = (numbers[None, :] < numbers[:, None])[None]  # [i, j]: j comes before i in the block
    slot_ids = ops.arange(0, max_kept, dtype="int32")[None, :]

    def cond(block, kept, kept_boxes, kept_labels, count, per_label):
        first_score = ops.take(blocks[0], ops.minimum(block, scalar_like(n_blocks - 1, block)), axis=1)[:, 0]
        return (block < n_blocks) & ops.any((count < max_kept) & (first_score > float("-inf")))

    def body(block, kept, kept_boxes, kept_labels, count, per_label):
        block_scores, block_boxes, block_labels = (ops.take(x, block, axis=1) for x in blocks)
        candidate = block_scores > float("-inf")
        # Dropped by a box kept in an earlier block.
        same_label = kept_labels[:, :, None] == block_labels[:, None, :]
        earlier_kept = (slot_ids < count[:, None])[:, :, None]
        alive = candidate & ~ops.any(
            earlier_kept & same_label & (_iou(kept_boxes, block_boxes) > iou_threshold), axis=1
        )
        # Settled within the block, as a fixed point.
        same_label = block_labels[:, :, None] == block_labels[:, None, :]
        suppressors = ops.cast(earlier & same_label & (_iou(block_boxes, block_boxes) > iou_threshold), "float32")

        def settle(keep, changed):
            hits = ops.squeeze(ops.matmul(suppressors, ops.cast(keep, "float32")[:, :, None]), -1)
            new_keep = alive & (hits == 0)
            return new_keep, ops.any(new_keep != keep)

        keep, _ = ops.while_loop(lambda keep, changed: changed, settle, (alive, ops.ones((), "bool")))
        if max_per_label is not None:
            earlier_of_label = ops.cast(earlier & same_label, "float32")
            rank_in_label = ops.squeeze(ops.matmul(earlier_of_label, ops.cast(keep, "float32")[:, :, None]), -1)
            before_block = batch_gather(per_label, block_labels)
            keep = keep & (ops.cast(rank_in_label, "int32") + before_block < max_per_label)
            of_label = ops.cast(block_labels[..., None] == ops.arange(0, n_labels, dtype="int32"), "int32")  # one-hot
            per_label = per_label + ops.sum(of_label * ops.cast(keep, "int32")[..., None], axis=1)
        # Append the kept boxes, in order, after the ones kept before.
        slots = count[:, None] + ops.cumsum(ops.cast(keep, "int32"), axis=1) - 1
        place = _place(keep, slots, max_kept)  # (batch, size, max_kept)
        placed = ops.any(place, axis=1)
        kept = ops.where(placed, _pick(place, block * size + numbers[None, :]), kept)
        kept_boxes = ops.where(placed[..., None], _pick(place, block_boxes), kept_boxes)
        kept_labels = ops.where(placed, _pick(place, block_labels), kept_labels)
        count = ops.minimum(count + ops.sum(ops.cast(keep, "int32"), axis=1), scalar_like(max_kept, count))
        return block + 1, kept, kept_boxes, kept_labels, count, per_label

    state = (
        ops.zeros((), "int32"),
        ops.zeros((batch, max_kept), "int32"),
        ops.zeros((batch, max_kept, 4), "float32"),
        ops.zeros((batch, max_kept), "int32"),
        ops.zeros((batch,), "int32"),
        ops.zeros((batch, n_labels), "int32"),
    )
    _, kept, _, _, count, _ = ops.while_loop(cond, body, state)
    return kept, count


def select(scores, boxes, labels, iou_threshold, top_k, max_per_label=None, n_labels=1, box_of=None):
    """Exact greedy NMS on the best candidates first, on all of them if needed (module docstring).

    Args:
        scores: float32 (batch, n) candidate scores, ``-inf`` for non-candidates, in
            candidate-number order (ties go to the lower number).
        boxes: float32 (batch, m, 4): the boxes that `box_of` indexes.
        labels: int32 (batch, n).
        box_of: maps candidate numbers (batch, k) to rows of `boxes` (default: identity).
        Others: as `greedy_nms`.

    Returns:
        (candidates, valid): int32 (batch, top_k) candidate numbers of the kept boxes by
        descending score, and bool (batch, top_k) marking the real ones.
    """
    n = scores.shape[1]
    box_of = box_of or (lambda numbers: numbers)
    subset_size = min(n, max(SUBSET_PER_KEPT * top_k, SUBSET_MIN))

    def run(numbers):
        """NMS over the candidates `numbers` (batch, k), given in increasing number."""
        sub_scores = batch_gather(scores, numbers)
        order = ops.argsort(-sub_scores, axis=-1)  # stable on every backend: ties keep number order
        numbers, sub_scores = batch_gather(numbers, order), batch_gather(sub_scores, order)
        positions, count = greedy_nms(
            sub_scores,
            batch_gather(boxes, box_of(numbers)),
            batch_gather(labels, numbers),
            iou_threshold,
            top_k,
            max_per_label,
            n_labels,
        )
        valid = ops.arange(0, top_k, dtype="int32")[None, :] < count[:, None]
        last_score = batch_gather(
            sub_scores, batch_gather(positions, ops.maximum(count - 1, scalar_like(0, count))[:, None])
        )[:, 0]
        return (
            ops.where(valid, batch_gather(numbers, positions), scalar_like(0, numbers)),
            valid,
            count,
            last_score,
            sub_scores[:, -1],
        )

    def run_all():
        return run(ops.broadcast_to(ops.arange(0, n, dtype="int32")[None, :], ops.shape(scores)))[:2]

    if subset_size == n:
        return run_all()
    # Only the indices of top_k: on XLA:CPU, using its values turns it into a full sort (30x slower).
    numbers = ops.sort(ops.cast(ops.top_k(scores, subset_size, sorted=False)[1], "int32"), axis=-1)
    candidates, valid, count, last_score, worst_taken = run(numbers)
    n_candidates = ops.sum(ops.cast(scores > float("-inf"), "int32"), axis=1)
    unsure = (n_candidates > subset_size) & ((count < top_k) | (last_score <= worst_taken))
    return ops.cond(ops.any(unsure), run_all, lambda: (candidates, valid))


class DecodeLayerBase(keras.layers.Layer):
    """Arguments, checks and config of the two decoding layers (see their docstrings)."""

    # The arguments are twins of `decode_detections`' (the original's signatures, kept).
    def __init__(
        self,
        confidence_thresh=DECODING.confidence_thresh,
        iou_threshold=DECODING.iou_threshold,
        top_k=DECODING.top_k,
        nms_max_output_size=DECODING.nms_max_output_size,
        coords="centroids",
        normalize_coords=True,
        img_height=None,
        img_width=None,
        background_id=0,
        **kwargs,
    ):
        # Decoding and NMS always run in float32, also under a mixed-precision policy.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        check_one_of("coords", coords, COORDS)
        if normalize_coords and (img_height is None or img_width is None):
            raise ValueError(
                "Decoding relative coordinates (normalize_coords=True) needs the image size. "
                f"Received: img_height={img_height}, img_width={img_width}"
            )
        for name, value in (("top_k", top_k), ("nms_max_output_size", nms_max_output_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")
        if isinstance(background_id, bool) or not isinstance(background_id, int) or background_id < 0:
            raise ValueError(
                f"Expected `background_id` to be a class column index >= 0. Received: background_id={background_id!r}"
            )
        self.background_id = background_id
        self.confidence_thresh = float(confidence_thresh)
        self.iou_threshold = float(iou_threshold) if iou_threshold else 0.0
        self.top_k = int(top_k)
        self.nms_max_output_size = int(nms_max_output_size)
        self.coords = coords
        self.normalize_coords = bool(normalize_coords)
        self.img_height = None if img_height is None else float(img_height)
        self.img_width = None if img_width is None else float(img_width)

    def _decode(self, inputs):
        """(scores with background, absolute corner boxes), both float32."""
        if inputs.shape[-1] is None or inputs.shape[-1] < MIN_CHANNELS:
            raise ValueError(
                "Expected input of shape (batch, n_boxes, n_classes + 1 + 12) with at least one class "
                f"besides background. Received: shape={inputs.shape}"
            )
        if inputs.shape[1] is None:
            raise ValueError(f"The decoding layers need a static number of boxes. Received: shape={inputs.shape}")
        n_class_columns = inputs.shape[-1] - N_BOX_CHANNELS
        if self.background_id >= n_class_columns:
            raise ValueError(f"`background_id`={self.background_id} is not one of the {n_class_columns} class columns.")
        y_pred = ops.cast(inputs, "float32")
        boxes = decode_corners(y_pred, self.coords, self.normalize_coords, self.img_height, self.img_width)
        return y_pred[..., CLASSES], boxes

    def _rows(self, class_ids, confidences, boxes, valid):
        """(batch, top_k, 6) rows ``[class_id, confidence, xmin, ymin, xmax, ymax]``, zeros where not valid."""
        rows = ops.concatenate([ops.cast(class_ids, "float32")[..., None], confidences[..., None], boxes], axis=-1)
        return ops.where(valid[..., None], rows, scalar_like(0.0, rows))

    def compute_output_shape(self, input_shape):
        """``(batch, top_k, 6)``."""
        return (input_shape[0], self.top_k, 6)  # a Python int, not a tensor (original bug 16)

    def get_config(self):
        """Every constructor argument, as plain Python values."""
        config = super().get_config()
        config.update(
            confidence_thresh=self.confidence_thresh,
            iou_threshold=self.iou_threshold,
            top_k=self.top_k,
            nms_max_output_size=self.nms_max_output_size,
            coords=self.coords,
            normalize_coords=self.normalize_coords,
            img_height=self.img_height,
            img_width=self.img_width,
            background_id=self.background_id,
        )
        return config

"""SSDLoss on hand-computed tensors, against a loop reference, and in training."""

import math
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import compiled, random_labels  # noqa: E402
from reference import ssd_loss_total  # noqa: E402

from ssd_keras.boxes.layout import OFFSETS  # noqa: E402
from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402
from ssd_keras.layers.anchor_boxes import AnchorBoxes  # noqa: E402
from ssd_keras.layers.decode_detections import DecodeDetections  # noqa: E402
from ssd_keras.layers.l2_normalization import L2Normalization  # noqa: E402
from ssd_keras.losses.ssd_loss import SSDLoss  # noqa: E402
from ssd_keras.models.ssd7 import build_model  # noqa: E402

pytestmark = pytest.mark.backends  # run under TensorFlow, JAX and PyTorch

N_CLASSES = 2  # background + 1


def _rows(*anchors):
    """Packed rows from (class vector, offsets) pairs; anchors and variances do not matter."""
    return np.array(
        [list(classes) + list(offsets) + [0.5, 0.5, 0.2, 0.2] + [0.1, 0.1, 0.2, 0.2] for classes, offsets in anchors],
        np.float32,
    )


def _loss(loss, y_true, y_pred):
    return keras.ops.convert_to_numpy(loss.compute_loss(np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32)))


def test_one_positive_one_negative_by_hand():
    y_true = _rows(([0, 1], [0, 0, 0, 0]), ([1, 0], [0, 0, 0, 0]))[None]
    y_pred = _rows(([0.2, 0.8], [0.5, -2, 0, 0]), ([0.9, 0.1], [3, 3, 3, 3]))[None]
    # class: -ln 0.8 = 0.223144 (positive) + -ln 0.9 = 0.105361 (the one negative, 3:1 allows it);
    # loc, positive only: 0.5 * 0.5^2 + (2 - 0.5) = 1.625. One positive, batch of 1.
    np.testing.assert_allclose(_loss(SSDLoss(), y_true, y_pred), [0.223144 + 0.105361 + 1.625], rtol=1e-5)
    np.testing.assert_allclose(_loss(SSDLoss(alpha=0.5), y_true, y_pred), [0.223144 + 0.105361 + 0.8125], rtol=1e-5)
    np.testing.assert_allclose(_loss(SSDLoss(neg_pos_ratio=0), y_true, y_pred), [0.223144 + 1.625], rtol=1e-5)


def _two_images():
    neg = ([1, 0], [0, 0, 0, 0])
    y_true = np.stack([_rows(([0, 1], [0, 0, 0, 0]), neg, neg, neg), _rows(neg, neg, neg, ([0, 0], [0, 0, 0, 0]))])
    # Image 0: positive at p=0.5 (ln 2), negatives with losses -ln 0.9, 0 (p=1: not a candidate), -ln 0.95.
    # Image 1: negatives -ln 0.5, -ln 0.6, -ln 0.99; the last anchor is neutral (all-zero class vector).
    y_pred = np.stack(
        [
            _rows(([0.5, 0.5], [0, 0, 0, 0]), ([0.9, 0.1], [0] * 4), ([1.0, 0.0], [0] * 4), ([0.95, 0.05], [0] * 4)),
            _rows(([0.5, 0.5], [0] * 4), ([0.6, 0.4], [0] * 4), ([0.99, 0.01], [0] * 4), ([0.01, 0.99], [9] * 4)),
        ]
    )
    return y_true, y_pred


def test_hard_negatives_are_mined_over_the_whole_batch():
    y_true, y_pred = _two_images()
    out = _loss(SSDLoss(neg_pos_ratio=2), y_true, y_pred)
    # 1 positive -> 2 negatives: the two largest of the batch, -ln 0.5 and -ln 0.6, both in image 1.
    # Per image times batch size 2, so that Keras' mean is the sum over the batch.
    np.testing.assert_allclose(out, [2 * math.log(2), 2 * (math.log(2) - math.log(0.6))], rtol=1e-5)
    assert out.mean() == pytest.approx(ssd_loss_total(y_true, y_pred, neg_pos_ratio=2), rel=1e-5)


def test_n_neg_min_and_batches_without_positives():
    y_true, y_pred = _two_images()
    y_true[0, 0, :2] = [1, 0]  # no positives left; anchor 0 of image 0 is now a negative with loss ln 2
    zero = _loss(SSDLoss(), y_true, y_pred)
    np.testing.assert_array_equal(zero, [0.0, 0.0])  # finite: divided by max(1, 0)
    two = _loss(SSDLoss(n_neg_min=2), y_true, y_pred)  # ln 2 twice (one per image), tie-free sum
    assert two.sum() / 2 == pytest.approx(2 * math.log(2), rel=1e-5)
    # n_neg_min above the available negatives: every non-zero negative loss (5 of them).
    everything = -math.log(0.5) * 2 - math.log(0.9) - math.log(0.95) - math.log(0.6) - math.log(0.99)
    assert _loss(SSDLoss(n_neg_min=100), y_true, y_pred).mean() == pytest.approx(everything, rel=1e-5)
    # No negatives with a loss at all: zero, not NaN.
    y_pred[..., 0], y_pred[..., 1] = 1.0, 0.0
    np.testing.assert_array_equal(_loss(SSDLoss(n_neg_min=5), y_true, y_pred), [0.0, 0.0])


@pytest.mark.parametrize("seed", range(3))
def test_equals_the_loop_reference_on_encoded_targets(seed):
    rng = np.random.default_rng(seed)
    encoder = SSDInputEncoder(60, 80, 3, [(6, 8), (3, 4)], scales=[0.2, 0.5, 0.9], variances=[0.1, 0.1, 0.2, 0.2])
    y_true = encoder(random_labels(rng, 3, 3, 60, 80, max_boxes=3))
    y_pred = y_true.copy()
    logits = rng.normal(0, 2, y_true[..., :4].shape)
    y_pred[..., :4] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y_pred[..., OFFSETS] += rng.normal(0, 1, y_pred[..., OFFSETS].shape)
    for args in (dict(), dict(neg_pos_ratio=1, n_neg_min=10, alpha=0.3)):
        out = _loss(SSDLoss(**args), y_true, y_pred)
        assert out.mean() == pytest.approx(ssd_loss_total(y_true, y_pred, **args), rel=1e-5)


def test_compute_loss_never_changes_the_object_and_retraces():
    loss = SSDLoss(neg_pos_ratio=3, n_neg_min=1, alpha=1.0)
    traced = compiled(loss.compute_loss)
    y_true, y_pred = _two_images()
    first = traced(y_true, y_pred)
    traced(y_true[:1], y_pred[:1])  # another shape: a second trace (the original failed here)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(traced(y_true, y_pred)), keras.ops.convert_to_numpy(first))
    assert (loss.neg_pos_ratio, loss.n_neg_min, loss.alpha) == (3, 1, 1.0)
    assert all(type(getattr(loss, k)) in (int, float) for k in ("neg_pos_ratio", "n_neg_min", "alpha"))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_predictions(dtype):
    y_true, y_pred = _two_images()
    expected = _loss(SSDLoss(neg_pos_ratio=2), y_true, y_pred)
    half = SSDLoss(neg_pos_ratio=2).compute_loss(y_true, keras.ops.cast(y_pred, dtype))
    assert keras.backend.standardize_dtype(half.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(half), expected, rtol=2e-2)


def test_errors():
    with pytest.raises(ValueError, match="neg_pos_ratio >= 0"):
        SSDLoss(neg_pos_ratio=-1)


def test_targets_for_other_anchors_or_classes_are_named():
    # Before: "Dimensions must be equal, but are 760 and 340 for '{{node compile_loss/...Mul}}'".
    loss = SSDLoss()
    y_pred = np.zeros((2, 340, 16), np.float32)
    with pytest.raises(
        ValueError,
        match=r"the targets have 760 boxes \(anchors\) but the model predicts 340 .*"
        r"SSDInputEncoder.from_model\(model\)",
    ):
        loss.compute_loss(np.zeros((2, 760, 16), np.float32), y_pred)
    with pytest.raises(
        ValueError, match=r"the targets have 18 channels \(n_classes \+ 1 \+ 12\) but the model predicts 16"
    ):
        loss.compute_loss(np.zeros((2, 340, 18), np.float32), y_pred)
    with pytest.raises(
        ValueError, match=r"expects y_true and y_pred of shape \(batch, n_boxes, n_classes \+ 1 \+ 12\)"
    ):
        loss.compute_loss(np.zeros((340, 16), np.float32), y_pred)


def _ssd7_batch(seed=0):
    keras.utils.set_random_seed(seed)
    model, sizes = build_model(
        (64, 64, 3),
        2,
        scales=[0.2, 0.4, 0.6, 0.8, 0.95],
        normalize_coords=True,
        subtract_mean=127.5,
        divide_by_stddev=127.5,
        return_predictor_sizes=True,
    )
    rng = np.random.default_rng(seed)
    labels = random_labels(rng, 4, 2, 64, 64, max_boxes=3, min_boxes=1)
    images = rng.uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    for image, boxes in zip(images, labels):  # draw the objects, class 1 bright, class 2 dark
        for c, xmin, ymin, xmax, ymax in boxes:
            image[int(ymin) : int(ymax), int(xmin) : int(xmax)] = 255.0 if c == 1 else 0.0
    encoder = SSDInputEncoder(
        64, 64, 2, sizes, scales=[0.2, 0.4, 0.6, 0.8, 0.95], normalize_coords=True, variances=[1.0] * 4
    )
    return model, images, encoder(labels)


@pytest.mark.slow
def test_one_fit_step_of_ssd7_lowers_the_loss():
    model, images, y_true = _ssd7_batch()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=SSDLoss().compute_loss)
    # Each epoch's loss is computed before its update: epoch 2 sees the weights after one step.
    history = model.fit(images, y_true, batch_size=4, epochs=2, shuffle=False, verbose=0)
    first, second = history.history["loss"]
    assert np.isfinite(first) and second < first
    expected = ssd_loss_total(y_true, model.predict(images, verbose=0))  # the reported loss is the paper's
    assert model.evaluate(images, y_true, verbose=0) == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_saved_model_reloads_with_the_original_custom_objects(tmp_path):
    model, images, y_true = _ssd7_batch(1)
    ssd_loss = SSDLoss(neg_pos_ratio=2, alpha=0.5)
    model.compile(optimizer="adam", loss=ssd_loss.compute_loss)
    model.fit(images, y_true, batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "ssd7.keras")
    model.save(path)
    custom_objects = {
        "AnchorBoxes": AnchorBoxes,
        "L2Normalization": L2Normalization,
        "DecodeDetections": DecodeDetections,
        "compute_loss": ssd_loss.compute_loss,
    }  # the notebooks' dict
    reloaded = keras.saving.load_model(path, custom_objects=custom_objects)
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert reloaded.evaluate(images, y_true, verbose=0) == pytest.approx(
        model.evaluate(images, y_true, verbose=0), rel=1e-5
    )
    reloaded.fit(images, y_true, batch_size=4, epochs=1, verbose=0)  # training goes on
    # Without custom objects too (the original failed with "Unknown loss function"),
    # and with the loss's own arguments.
    plain = keras.saving.load_model(path)
    assert plain.evaluate(images, y_true, verbose=0) == pytest.approx(
        ssd_loss_total(y_true, plain.predict(images, verbose=0), neg_pos_ratio=2, alpha=0.5), rel=1e-4
    )

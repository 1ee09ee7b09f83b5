"""sample_tensors and the weight sub-sampling workflow."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ssd_keras.models.weight_sampling import class_channel_indices, sample_tensors, subsample_classifier_weights  # noqa: E402


def test_index_lists_pick_in_order():
    kernel = np.arange(2 * 6).reshape(2, 6).astype(float)
    bias = np.arange(6).astype(float) * 10
    k, b = sample_tensors([kernel, bias], [2, [5, 0, 3]], axes=[[1]])
    np.testing.assert_array_equal(k, [[5, 0, 3], [11, 6, 9]])
    np.testing.assert_array_equal(b, [50, 0, 30])


def test_int_subsampling_keeps_index_zero_and_sorted_rest():
    kernel = np.arange(10.0)[None, :]
    (k,) = sample_tensors([kernel], [1, 4], rng=0)
    assert k[0, 0] == 0 and len(k[0]) == 4 and np.all(np.diff(k[0]) > 0) and set(k[0]) <= set(range(10))


def test_upsampling_places_every_entry_and_initialises_the_rest():
    kernel = np.array([[1.0, 2.0, 3.0]])
    bias = np.array([10.0, 20.0, 30.0])
    k, b = sample_tensors([kernel, bias], [1, 7], axes=[[1]], init=["gaussian", "zeros"], stddev=0.001, rng=3)
    assert k.shape == (1, 7) and b.shape == (7,)
    kept = np.flatnonzero(np.isin(b, bias))
    assert kept[0] == 0 and len(kept) == 3
    np.testing.assert_array_equal(k[0, kept], [1, 2, 3])  # original order kept
    others = np.setdiff1d(np.arange(7), kept)
    assert np.all(b[others] == 0) and np.all(np.abs(k[0, others]) < 0.01)


def test_errors():
    with pytest.raises(ValueError, match="one sampling instruction per axis"):
        sample_tensors([np.zeros((2, 2))], [2])
    with pytest.raises(ValueError, match="index out of range"):
        sample_tensors([np.zeros((2, 2))], [2, [0, 5]])
    with pytest.raises(ValueError, match="map the axes"):
        sample_tensors([np.zeros((2, 2)), np.zeros(2)], [2, 2])
    with pytest.raises(ValueError, match="whole number of blocks"):
        class_channel_indices([0, 1], 81, 100)


@pytest.mark.backends
def test_subsampling_a_weights_file_for_fewer_classes(tmp_path):
    from ssd_keras.models.legacy_weights import load_weights_by_name, read_legacy_h5
    from ssd_keras.models.ssd7 import build_model
    from ssd_keras.models.vgg16_reduced import write_legacy_h5

    scales = [0.2, 0.4, 0.6, 0.8, 0.95]
    source = build_model((64, 64, 3), 5, scales=scales)  # 6 classes with background
    rng = np.random.default_rng(0)
    weights = {
        layer.name: [rng.normal(size=w.shape).astype(np.float32) for w in layer.weights]
        for layer in source.layers
        if layer.weights
    }
    path = str(tmp_path / "source.h5")
    write_legacy_h5(path, weights)
    destination = str(tmp_path / "three_classes.h5")
    classifiers = ["classes4", "classes5", "classes6", "classes7"]
    kept = subsample_classifier_weights(path, destination, [0, 4, 2], n_classes_source=6, classifier_layers=classifiers)
    assert kept == [0, 4, 2]
    target = build_model((64, 64, 3), 2, scales=scales)
    report = load_weights_by_name(target, destination)
    assert report.complete
    sampled = read_legacy_h5(destination)["classes4"][0][1]
    original = weights["classes4"][0]
    # 4 boxes per cell: channels (0, 4, 2) of each block of 6.
    np.testing.assert_array_equal(sampled, original[..., [0, 4, 2, 6, 10, 8, 12, 16, 14, 18, 22, 20]])
    np.testing.assert_array_equal(read_legacy_h5(destination)["boxes4"][0][1], weights["boxes4"][0])
    random_kept = subsample_classifier_weights(
        path, str(tmp_path / "random.h5"), 3, n_classes_source=6, classifier_layers=classifiers, rng=1
    )
    assert random_kept[0] == 0 and len(random_kept) == 3
    with pytest.raises(ValueError, match="has no layer 'conv4_3_norm_mbox_conf'"):
        subsample_classifier_weights(path, str(tmp_path / "x.h5"), [0, 1], n_classes_source=6)
    assert not (tmp_path / "x.h5").exists()

"""Keras-2 `.h5` weight files: `load_weights(by_name=True)`, the mismatch report, VGG-16 conversion."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import write_keras2_weights  # noqa: E402

from ssd_keras.models.legacy_weights import load_weights_by_name, read_legacy_h5  # noqa: E402
from ssd_keras.models.ssd7 import build_model  # noqa: E402
from ssd_keras.models.ssd300 import ssd_300  # noqa: E402
from ssd_keras.models.vgg16_reduced import save_vgg16_fc_reduced, vgg16_fc_reduced_weights  # noqa: E402

pytestmark = pytest.mark.backends  # run under TensorFlow, JAX and PyTorch

SSD7_SCALES = [0.2, 0.4, 0.6, 0.8, 0.95]


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.05, weight.shape).astype("float32") + (1.0 if "variance" in weight.path else 0.0))


def _ssd7(seed=None, n_classes=3, mode="training"):
    model = build_model((64, 64, 3), n_classes, mode=mode, scales=SSD7_SCALES, normalize_coords=True)
    if seed is not None:
        _randomize(model, seed)
    return model


def test_keras2_file_loads_by_name_and_reproduces_outputs(tmp_path):
    source = _ssd7(seed=1)
    path = str(tmp_path / "ssd7_weights.h5")
    write_keras2_weights(path, source)
    x = np.random.default_rng(2).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    target = _ssd7()
    assert not np.allclose(target.predict(x, verbose=0), source.predict(x, verbose=0))
    target.load_weights(path, by_name=True)  # the original call pattern
    np.testing.assert_array_equal(target.predict(x, verbose=0), source.predict(x, verbose=0))
    other = _ssd7(mode="inference")  # weights load into any mode
    report = load_weights_by_name(other, path)
    assert report.complete and len(report.loaded) == 7 * 2 + 4 * 2  # 7 x (conv, bn), 4 x (classes, boxes)
    np.testing.assert_array_equal(
        other.get_layer("bn3").moving_variance.numpy(), source.get_layer("bn3").moving_variance.numpy()
    )


def test_weights_of_a_whole_keras2_model_file_load_by_name(tmp_path):
    # The original's ModelCheckpoint saved whole models; Keras 3 cannot rebuild them (their
    # Lambda layers hold old bytecode), but their weights load into the same architecture.
    source = _ssd7(seed=3)
    path = str(tmp_path / "ssd7_epoch-20_loss-1.2345.h5")
    write_keras2_weights(path, source, whole_model=True)
    with pytest.raises(ValueError, match="Lambda"):
        keras.saving.load_model(path, compile=False)
    x = np.random.default_rng(4).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    target = _ssd7()
    target.load_weights(path, by_name=True)
    np.testing.assert_array_equal(target.predict(x, verbose=0), source.predict(x, verbose=0))
    other = _ssd7(mode="inference")
    assert load_weights_by_name(other, path).complete
    np.testing.assert_array_equal(
        other.get_layer("classes5").kernel.numpy(), source.get_layer("classes5").kernel.numpy()
    )


def test_ssd300_keras2_file_with_l2_normalization_gamma(tmp_path):
    source = ssd_300((300, 300, 3), 2, scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05])
    source.get_layer("conv4_3_norm").gamma.assign(np.arange(512, dtype=np.float32))
    path = str(tmp_path / "VGG_VOC0712_SSD_300x300_iter_120000.h5")
    write_keras2_weights(path, source)
    target = ssd_300((300, 300, 3), 2, mode="inference", scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05])
    target.load_weights(path, by_name=True)
    np.testing.assert_array_equal(target.get_layer("conv4_3_norm").gamma.numpy(), np.arange(512))
    for name in ("conv1_1", "fc6", "conv9_2_mbox_conf"):
        for a, b in zip(target.get_layer(name).weights, source.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_mismatch_report(tmp_path):
    source = _ssd7(seed=3, n_classes=3)
    path = str(tmp_path / "w.h5")
    write_keras2_weights(path, source, skip=("conv2",), extra={"conv_extra": [np.zeros((3, 3, 3, 8))]})
    target = _ssd7(n_classes=5)  # classes4..7 have 6 instead of 4 classes
    before = target.get_layer("conv1").kernel.numpy().copy()
    with pytest.raises(
        ValueError,
        match=r"do not fit 4 layer\(s\)[\s\S]*classes4: .*kernel:0: file \(3, 3, 64, 16\) vs model \(3, 3, 64, 24\)",
    ):
        load_weights_by_name(target, path)
    np.testing.assert_array_equal(target.get_layer("conv1").kernel.numpy(), before)  # nothing loaded
    report = load_weights_by_name(target, path, skip_mismatch=True)
    assert sorted(layer for layer, _ in report.mismatches) == ["classes4", "classes5", "classes6", "classes7"]
    assert report.file_only == ["conv_extra"] and report.model_only == ["conv2"]
    assert "boxes4" in report.loaded and "conv2" not in report.loaded and not report.complete
    np.testing.assert_array_equal(target.get_layer("conv1").kernel.numpy(), source.get_layer("conv1").kernel.numpy())
    text = str(report)
    assert "In the file but not in the model (1): conv_extra" in text and "left as they were (1): conv2" in text


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_legacy_h5(str(tmp_path / "missing.h5"))
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="text.h5 is not a readable HDF5 file"):
        read_legacy_h5(str(tmp_path / "text.h5"))
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(ValueError, match="plain.h5 is not a Keras-2 weights file"):
        read_legacy_h5(str(tmp_path / "plain.h5"))


@pytest.fixture(scope="module")
def random_vgg16():
    keras.utils.set_random_seed(0)
    return keras.applications.VGG16(include_top=True, weights=None)


def test_fc_reduction_is_the_dilated_subsampled_convolution(random_vgg16):
    weights = vgg16_fc_reduced_weights(random_vgg16)
    fc1_kernel, fc1_bias = random_vgg16.get_layer("fc1").get_weights()
    fc6_kernel, fc6_bias = weights["fc6"]
    assert fc6_kernel.shape == (3, 3, 512, 1024) and weights["fc7"][0].shape == (1, 1, 1024, 1024)
    # Hand index: fc6[i, j, c, k] = fc1[((3i) * 7 + 3j) * 512 + c, 4k].
    assert fc6_kernel[1, 2, 5, 7] == fc1_kernel[(3 * 7 + 6) * 512 + 5, 28]
    np.testing.assert_array_equal(fc6_bias, fc1_bias[::4])
    fc2_kernel = random_vgg16.get_layer("fc2").get_weights()[0]
    assert weights["fc7"][0][0, 0, 9, 3] == fc2_kernel[36, 12]
    # On a pool5 output that is zero except at rows/cols 0, 3, 6, fc1's every 4th unit
    # equals the 3x3 convolution with dilation 3 at the centre.
    pool5 = np.zeros((1, 7, 7, 512), np.float32)
    pool5[:, ::3, ::3, :] = np.random.default_rng(0).normal(size=(1, 3, 3, 512))
    dense = pool5.reshape(1, -1) @ fc1_kernel[:, ::4] + fc1_bias[::4]
    conv = keras.layers.Conv2D(1024, 3, dilation_rate=3, padding="valid")
    conv.build((1, 7, 7, 512))
    conv.set_weights(weights["fc6"])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(conv(pool5))[0, 0, 0], dense[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(weights["conv3_2"][0], random_vgg16.get_layer("block3_conv2").get_weights()[0])


def test_vgg16_file_starts_ssd300_training(random_vgg16, tmp_path):
    path = save_vgg16_fc_reduced(str(tmp_path / "VGG_ILSVRC_16_layers_fc_reduced.h5"), random_vgg16)
    assert [name for name in read_legacy_h5(path)][-2:] == ["fc6", "fc7"]
    model = ssd_300((300, 300, 3), 20, scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05])
    report = load_weights_by_name(model, path)
    assert len(report.loaded) == 15 and not report.file_only and not report.mismatches
    assert "conv4_3_norm" in report.model_only and "fc7_mbox_conf" in report.model_only
    np.testing.assert_array_equal(
        model.get_layer("conv5_3").kernel.numpy(), random_vgg16.get_layer("block5_conv3").kernel.numpy()
    )
    model.load_weights(path, by_name=True)  # the Keras call reads the same file
    np.testing.assert_array_equal(
        model.get_layer("fc6").kernel.numpy(), vgg16_fc_reduced_weights(random_vgg16)["fc6"][0]
    )

"""`.keras` files written by release 0.1.0, before the code moved into the `ssd_keras`
package, load with today's code and compute what they computed then (`tests/fixtures`)."""

import os

import keras
import numpy as np
import pytest

import ssd_keras.layers  # noqa: F401  (registers the custom objects, as a user imports them)
from ssd_keras.models.files import read_info

pytestmark = pytest.mark.backends
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
CLASSES = ["background", "circle", "rectangle", "triangle"]


@pytest.fixture(scope="module")
def outputs():
    return dict(np.load(os.path.join(FIXTURES, "ssd7_v0.1.0_outputs.npz")))


@pytest.mark.parametrize("mode", ["training", "inference", "inference_fast"])
def test_a_model_saved_by_0_1_0_loads_in_safe_mode_and_predicts_as_it_did(mode, outputs):
    path = os.path.join(FIXTURES, f"ssd7_v0.1.0_{mode}.keras")
    model = keras.saving.load_model(path, safe_mode=True)  # registered names, no custom_objects
    assert read_info(path)["class_names"] == CLASSES
    got = keras.ops.convert_to_numpy(model(outputs["images"], training=False))
    if mode == "training":
        np.testing.assert_allclose(
            got, outputs["training"], rtol=1e-4, atol=2e-5
        )  # float32 convolutions, other kernels
        return
    expected = outputs[mode]
    # Same rows in the same order; scores to float32 rounding, boxes to 1e-3 px.
    np.testing.assert_array_equal(got[..., 0], expected[..., 0])
    np.testing.assert_allclose(got[..., 1], expected[..., 1], atol=1e-5)
    np.testing.assert_allclose(got[..., 2:], expected[..., 2:], atol=1e-3)


def test_a_training_checkpoint_of_0_1_0_goes_on_training_with_its_optimizer_state(outputs):
    model = keras.saving.load_model(os.path.join(FIXTURES, "ssd7_v0.1.0_training.keras"))
    assert type(model.optimizer).__name__ == "SGD" and int(model.optimizer.iterations) == 1
    assert model.loss is not None
    from ssd_keras.encoding.input_encoder import SSDInputEncoder

    encoder = SSDInputEncoder.from_model(model, matching_type="multi", pos_iou_threshold=0.5, neg_iou_limit=0.5)
    labels = [
        np.array([[1, 5, 6, 40, 44]]),
        np.array([[2, 10, 10, 30, 50]]),
        np.array([[1, 0, 0, 63, 63]]),
        np.array([[3, 2, 30, 20, 62]]),
    ]
    loss = float(np.asarray(model.train_on_batch(outputs["images"], encoder(labels))).ravel()[0])
    assert np.isfinite(loss) and int(model.optimizer.iterations) == 2

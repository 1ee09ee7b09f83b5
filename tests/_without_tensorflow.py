"""Run by test_backends.py in a fresh process under JAX or PyTorch, with TensorFlow made
impossible to import (as on a GPU machine that has none): every feature that does not
need TensorFlow works, and the ones that do say so. Prints "ok" at the end. (The command
line and the worker processes are tested under each backend by test_cli and
test_batch_workers.)

    KERAS_BACKEND=jax python tests/_without_tensorflow.py WORK_DIR
"""

import os
import sys

# As if TensorFlow were not installed: `import tensorflow` raises ModuleNotFoundError and
# `importlib.util.find_spec("tensorflow")` returns None.
sys.modules["tensorflow"] = None
work = sys.argv[1]

import keras  # noqa: E402
import numpy as np  # noqa: E402

assert keras.backend.backend() in ("jax", "torch"), keras.backend.backend()

from ssd_keras.data.loading import load_dataset  # noqa: E402
from ssd_keras.data.synthetic_shapes import make_shapes_dataset  # noqa: E402
from ssd_keras.data.transforms.geometric import Resize  # noqa: E402
from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402
from ssd_keras.errors import BackendError  # noqa: E402
from ssd_keras.evaluation.coco import predict_all_to_json  # noqa: E402
from ssd_keras.evaluation.voc import Evaluator  # noqa: E402
from ssd_keras.inference.loading import add_decoding  # noqa: E402
from ssd_keras.losses.ssd_loss import SSDLoss  # noqa: E402
from ssd_keras.models.ssd7 import build_model  # noqa: E402
from ssd_keras.models.ssd300 import ssd_300  # noqa: E402

keras.utils.set_random_seed(0)  # Keras seeds TensorFlow too only where it can import it
# (test_models builds SSD300 and SSD512 in every mode under each backend.)
ssd_300((300, 300, 3), 20, mode="inference", scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05])

info = make_shapes_dataset(os.path.join(work, "shapes"), n_trainval=8, n_test=4, seed=0, verbose=False)
classes = info["classes"]
train = load_dataset(
    "voc", [info["images_dir"]], [info["trainval"]], [info["annotations_dir"]], classes=classes, verbose=False
)
scales = [0.2, 0.4, 0.6, 0.8, 0.95]
model, sizes = build_model((64, 64, 3), 3, scales=scales, variances=[0.1, 0.1, 0.2, 0.2], return_predictor_sizes=True)
encoder = SSDInputEncoder(64, 64, 3, sizes, scales=scales, variances=[0.1, 0.1, 0.2, 0.2])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SSDLoss().compute_loss)
data = train.keras_dataset(batch_size=4, transformations=[Resize(64, 64)], label_encoder=encoder, workers=2, seed=0)
history = model.fit(data, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"][0])

detector = add_decoding(model, confidence_thresh=0.01)
test = load_dataset(
    "voc", [info["images_dir"]], [info["test"]], [info["annotations_dir"]], classes=classes, verbose=False
)
mean_ap = Evaluator(detector, 3, test)(64, 64, batch_size=2, verbose=False)
assert 0.0 <= mean_ap <= 1.0
test.image_ids = list(range(1, test.dataset_size + 1))
results = predict_all_to_json(
    os.path.join(work, "coco.json"),
    detector,
    64,
    64,
    {1: 1, 2: 2, 3: 3},
    test,
    batch_size=2,
    model_mode="inference",
    verbose=False,
)
assert results and all(set(r) == {"image_id", "category_id", "score", "bbox"} for r in results)

path = os.path.join(work, "detector.keras")
detector.save(path)
x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
np.testing.assert_array_equal(keras.saving.load_model(path).predict(x, verbose=0), detector.predict(x, verbose=0))

from ssd_keras.export.saved_model import export_saved_model  # noqa: E402
from ssd_keras.training.distribution import make_strategy  # noqa: E402

for feature in (lambda: export_saved_model(detector, os.path.join(work, "saved")), lambda: make_strategy("mirrored")):
    try:
        feature()
    except BackendError as error:
        assert keras.backend.backend() in str(error) and "tensorflow" in str(error), error
    else:
        raise AssertionError("a TensorFlow feature ran without TensorFlow")

assert sys.modules["tensorflow"] is None and not any(name.startswith("tensorflow.") for name in sys.modules)
print("ok")

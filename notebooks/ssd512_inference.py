# ---
# jupyter:
#   jupytext:
#     formats: ipynb,notebooks//py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # SSD512 inference
#
# Load the published Pascal VOC weights of the original (`VGG_VOC0712_SSD_512x512_iter_120000.h5`,
# converted from the Caffe model) into an SSD512 built in inference mode, and detect objects in images. With
# `SSD_KERAS_SMOKE=1` the weights are random (written in the original's Keras-2 `.h5` layout)
# and the images synthetic, so the boxes mean nothing: the run checks the plumbing. Without
# the weights file, everything up to the cell that loads it runs on the photographs in
# `examples/`.
#
# This notebook is `ssd300_inference`'s twin for SSD512, as in the original, which ships both.

# %%
import os
import tempfile

# SSD_KERAS_SMOKE=1 runs this notebook on the synthetic shapes data set with tiny
# sizes and a few steps (what the test suite does). Leave it unset for real runs. Its files
# go to SSD_KERAS_WORK_DIR where that is set (the tests give each run its own folder),
# else to a new temporary folder.
SMOKE = os.environ.get("SSD_KERAS_SMOKE") == "1"
WORK_DIR = (os.environ.get("SSD_KERAS_WORK_DIR") or tempfile.mkdtemp(prefix="ssd_keras_nb_")) if SMOKE else "."

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.optimizers import Adam

from ssd_keras.data.generator import DataGenerator
from ssd_keras.data.transforms.geometric import Resize
from ssd_keras.data.transforms.inverse import apply_inverse_transforms
from ssd_keras.data.transforms.photometric import ConvertTo3Channels
from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.ssd512 import ssd_512

# %matplotlib inline

# %% [markdown]
# ## 1. Parameters
#
# The published weights file, the images to look at (here the photographs that come with
# the repository: a person and a cat, two of the 20 Pascal VOC classes, and a cup of
# coffee, which is none of them), the Pascal VOC test set for section 4, and the class names
# in the order the model was trained with, 'background' first.

# %%
weights_path = "VGG_VOC0712_SSD_512x512_iter_120000.h5"
image_paths = ["examples/astronaut.jpg", "examples/chelsea.jpg", "examples/coffee.jpg"]
VOC_2007_ROOT = "../datasets/VOCdevkit/VOC2007"
classes = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]
img_height = img_width = 512

# %%
if SMOKE:
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=16, n_test=8, seed=0, verbose=False)
    image_paths = [os.path.join(shapes["images_dir"], "000017.jpg"), os.path.join(shapes["images_dir"], "000018.jpg")]
    # Random weights in the original's Keras-2 .h5 layout, from a model of the same architecture.
    from ssd_keras.models.legacy_weights import read_legacy_h5  # noqa: F401  (the reader load_weights uses)
    from ssd_keras.models.vgg16_reduced import write_legacy_h5

    random_model = ssd_512(image_size=(img_height, img_width, 3), n_classes=20, mode="training", scales=[0.1] * 8)
    weights_path = os.path.join(WORK_DIR, "random_weights.h5")
    write_legacy_h5(
        weights_path, {layer.name: [w.numpy() for w in layer.weights] for layer in random_model.layers if layer.weights}
    )
    del random_model

# %%
fig, axes = plt.subplots(1, len(image_paths), figsize=(5 * len(image_paths), 4), squeeze=False)
for ax, path in zip(axes[0], image_paths):
    ax.imshow(keras.utils.load_img(path))
    ax.set_title(os.path.basename(path))
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 2. Build the model and load the weights
#
# `mode="inference"` ends the model in a `DecodeDetections` layer, so that it outputs
# detections instead of raw predictions: for every (anchor, class) pair scored above
# `confidence_thresh`, the box is decoded; non-maximum suppression per class drops boxes
# that overlap a higher-scored box of their class by more than `iou_threshold` (keeping at
# most `nms_max_output_size` per class), and the `top_k` best remain. The anchor settings
# (`scales`, `aspect_ratios`, `steps`, `offsets`, `variances`) must be those the weights were
# trained with: these are the Pascal VOC model's. (`mode="inference_fast"` uses the
# original's faster variant, which gives each anchor only its best class before NMS.)

# %%
scales = [0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05]
aspect_ratios = [
    [1.0, 2.0, 0.5],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5],
    [1.0, 2.0, 0.5],
]
steps = [8, 16, 32, 64, 128, 256, 512]
offsets = [0.5] * 7

K.clear_session()
model = ssd_512(
    image_size=(img_height, img_width, 3),
    n_classes=20,
    mode="inference",
    l2_regularization=0.0005,
    scales=scales,
    aspect_ratios_per_layer=aspect_ratios,
    two_boxes_for_ar1=True,
    steps=steps,
    offsets=offsets,
    clip_boxes=False,
    variances=[0.1, 0.1, 0.2, 0.2],
    normalize_coords=True,
    subtract_mean=[123, 117, 104],
    swap_channels=[2, 1, 0],
    confidence_thresh=0.5,
    iou_threshold=0.45,
    top_k=200,
    nms_max_output_size=400,
)

# %% [markdown]
# The published weights load by layer name (the file is a Keras 2.1 `save_weights` file:
# one group per layer, which this model's layer names match).

# %% tags=["needs-published-weights"]
model.load_weights(weights_path, by_name=True)
# Compiling is no longer needed for prediction; the original compiled "so Keras won't complain":
adam = Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
model.compile(optimizer=adam, loss=ssd_loss.compute_loss)

# %% [markdown]
# Or load a whole saved model (`.keras`); the original's `custom_objects` still work:
#
# ```python
# model = load_model("ssd_model.keras", custom_objects={
#     "AnchorBoxes": AnchorBoxes, "L2Normalization": L2Normalization,
#     "DecodeDetections": DecodeDetections, "compute_loss": ssd_loss.compute_loss})
# ```

# %% [markdown]
# ## 3. Detect objects in images
#
# The images are resized to SSD512's input; the model outputs `(batch, top_k, 6)` rows of
# `[class_id, confidence, xmin, ymin, xmax, ymax]` in the resized frame, best first, padded
# with zero rows. Rows above the threshold are the detections; scaling their coordinates by
# the ratio of the original size to the input size puts them on the original image.

# %%
orig_images, input_images = [], []
for img_path in image_paths:
    orig_images.append(np.asarray(keras.utils.load_img(img_path)))
    img = keras.utils.load_img(img_path, target_size=(img_height, img_width))
    input_images.append(keras.utils.img_to_array(img))
input_images = np.array(input_images)

y_pred = model.predict(input_images)
confidence_threshold = 0.5
y_pred_thresh = [y_pred[k][y_pred[k, :, 1] > confidence_threshold] for k in range(y_pred.shape[0])]
np.set_printoptions(precision=2, suppress=True, linewidth=90)
print("Predicted boxes:\n")
print("   class   conf xmin   ymin   xmax   ymax")
print(y_pred_thresh[0])


# %%
# Draws detections (coloured, labelled) and ground truth (green) with matplotlib.
from ssd_keras.utils.plotting import plot_detections

# %%
# Boxes are in the model's frame; scale them to the original image.
fig, axes = plt.subplots(1, len(orig_images), figsize=(8 * len(orig_images), 6), squeeze=False)
for ax, orig, boxes in zip(axes[0], orig_images, y_pred_thresh):
    boxes = boxes.copy()
    boxes[:, [2, 4]] *= orig.shape[1] / img_width
    boxes[:, [3, 5]] *= orig.shape[0] / img_height
    plot_detections(orig, boxes, classes, ax=ax)
plt.show()

# %% [markdown]
# ## 4. Detections on Pascal VOC 2007 test images (with the original images' coordinates)

# %%
if SMOKE:
    images_dir, annotations_dir, image_set = shapes["images_dir"], shapes["annotations_dir"], shapes["test"]
    voc_classes = shapes["classes"]
else:
    images_dir, annotations_dir = f"{VOC_2007_ROOT}/JPEGImages", f"{VOC_2007_ROOT}/Annotations"
    image_set, voc_classes = f"{VOC_2007_ROOT}/ImageSets/Main/test.txt", classes
dataset = DataGenerator()
dataset.parse_xml(
    images_dirs=[images_dir],
    image_set_filenames=[image_set],
    annotations_dirs=[annotations_dir],
    classes=voc_classes,
    include_classes="all",
    exclude_truncated=False,
    exclude_difficult=True,
    ret=False,
)
generator = dataset.generate(
    batch_size=1,
    shuffle=True,
    transformations=[ConvertTo3Channels(), Resize(img_height, img_width)],
    label_encoder=None,
    returns={"processed_images", "filenames", "inverse_transform", "original_images", "original_labels"},
    keep_images_without_gt=False,
)
batch_images, batch_filenames, batch_inverse_transforms, batch_original_images, batch_original_labels = next(generator)
y_pred = model.predict(batch_images)
y_pred_thresh = [y_pred[k][y_pred[k, :, 1] > confidence_threshold] for k in range(y_pred.shape[0])]
y_pred_thresh_inv = apply_inverse_transforms(y_pred_thresh, batch_inverse_transforms)
print("Image:", batch_filenames[0])
print(y_pred_thresh_inv[0])
plt.figure(figsize=(10, 7))
plot_detections(batch_original_images[0], y_pred_thresh_inv[0], classes, batch_original_labels[0])
plt.show()

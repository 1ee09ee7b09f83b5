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
# # SSD7 training
#
# SSD7 is the original's small SSD: seven convolutional layers, four of which feed
# predictor layers, small enough to train from scratch on a CPU or a modest GPU. It is a
# template for SSDs on base networks of your own, and a quick way to see every part of SSD
# at work: the model, the anchor boxes, the encoding of the ground truth, the data pipeline
# with its augmentation, training, and the decoding of the predictions.
#
# The original trained it on the Udacity traffic data set (5 classes: car, truck,
# pedestrian, bicyclist, traffic light; 300x480 images; CSV labels); its paths are in the
# parameters cell below. Without that data set (or with `SSD_KERAS_SMOKE=1`, as the tests
# run it) the notebook trains on the synthetic shapes of the demo, which it writes itself.

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
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN
from keras.optimizers import Adam

from ssd_keras.data.augmentation.constant_input_size import DataAugmentationConstantInputSize
from ssd_keras.data.generator import DataGenerator
from ssd_keras.data.transforms.geometric import Resize
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.encoding.output_decoder import decode_detections
from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.ssd7 import build_model

# %matplotlib inline

# %% [markdown]
# ## 1. Parameters
#
# * The data: an images folder and two CSV files (training and validation) with one row per
#   box, `image_name, xmin, xmax, ymin, ymax, class_id`.
# * `classes`: the class names in id order, **'background' first**: class id 0 is always the
#   background, and `n_classes` everywhere below counts only the others.
# * The input size of the model; images of any size are resized to it.
# * The batch size, the number of epochs and the steps per epoch (batches, not images).

# %%
# The Udacity traffic data set of the original (CSV: image_name, xmin, xmax, ymin, ymax, class_id).
images_dir = "../datasets/udacity_driving_datasets/"
train_labels_filename = "../datasets/udacity_driving_datasets/labels_train.csv"
val_labels_filename = "../datasets/udacity_driving_datasets/labels_val.csv"
classes = ["background", "car", "truck", "pedestrian", "bicyclist", "light"]
img_height, img_width, img_channels = 300, 480, 3
batch_size, epochs, steps_per_epoch = 16, 20, 1000

# %%
use_shapes = SMOKE or not os.path.isfile(train_labels_filename)
if use_shapes:
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    n = (16, 8) if SMOKE else (600, 120)
    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=n[0], n_test=n[1], seed=0, verbose=False)
    classes = shapes["classes"]
    img_height, img_width = (64, 64) if SMOKE else (128, 128)
    batch_size, epochs, steps_per_epoch = (4, 1, 2) if SMOKE else (8, 14, None)

# %% [markdown]
# ## 2. The model
#
# `build_model` builds SSD7 with the original's layer names. Its parameters:
#
# * `image_size`, `n_classes`: the input and the positive classes.
# * `mode`: `'training'` outputs the raw predictions, `(batch, n_anchors, n_classes + 1 + 12)`,
#   which the loss compares with the encoded ground truth; `'inference'` and
#   `'inference_fast'` add a decoding layer that outputs the detections.
# * `l2_regularization`: the weight decay of the convolution kernels.
# * `scales`: the anchor size of each of the four predictor layers as a fraction of the
#   shorter image side, plus one more value for the second square anchor of the last layer.
#   The smallest scale sets the smallest objects the model can find well.
# * `aspect_ratios_global` (or `aspect_ratios_per_layer`): the width-to-height ratios of the
#   anchors at every position; `two_boxes_for_ar1` adds a second, larger square anchor.
# * `steps` and `offsets`: the spacing of the anchor centres and where the first one sits;
#   `None` derives them from the image and feature-map sizes.
# * `clip_boxes`: whether anchors are clipped to the image.
# * `variances`: the scaling of the box offsets in the loss; smaller variances make the
#   localisation loss weigh more.
# * `normalize_coords`: anchors and offsets in coordinates relative to the image (0 to 1).
# * `subtract_mean`, `divide_by_stddev`: input normalisation inside the model, so that it
#   takes raw 0-255 pixels.

# %%
intensity_mean = 127.5  # maps pixel values to [-1, 1] together with the next line
intensity_range = 127.5
n_classes = len(classes) - 1
scales = [0.08, 0.16, 0.32, 0.64, 0.96]
aspect_ratios = [0.5, 1.0, 2.0]
two_boxes_for_ar1 = True
steps = None
offsets = None
clip_boxes = False
variances = [1.0, 1.0, 1.0, 1.0]  # the original's choice; [0.1, 0.1, 0.2, 0.2] learns boxes much faster (see the demo)
normalize_coords = True

K.clear_session()
model = build_model(
    image_size=(img_height, img_width, img_channels),
    n_classes=n_classes,
    mode="training",
    l2_regularization=0.0005,
    scales=scales,
    aspect_ratios_global=aspect_ratios,
    aspect_ratios_per_layer=None,
    two_boxes_for_ar1=two_boxes_for_ar1,
    steps=steps,
    offsets=offsets,
    clip_boxes=clip_boxes,
    variances=variances,
    normalize_coords=normalize_coords,
    subtract_mean=intensity_mean,
    divide_by_stddev=intensity_range,
)
# model.load_weights("./ssd7_weights.h5", by_name=True)   # to start from earlier weights

# %% [markdown]
# The loss (`SSDLoss`) is the paper's: a smooth L1 loss of the box offsets of the anchors
# matched to an object, plus a softmax cross entropy of the classes of those anchors and of
# the hardest background anchors, at most `neg_pos_ratio` of them per positive, all divided
# by the number of positives; `alpha` weighs the localisation part. The original trained
# SSD7 with Adam.

# %%
adam = Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
model.compile(optimizer=adam, loss=ssd_loss.compute_loss)
model.optimizer.build(model.trainable_variables)  # optional: TensorFlow then traces the training step once, not twice

# %% [markdown]
# ## 3. Data
#
# A `DataGenerator` reads the annotations (`parse_csv`, `parse_xml` for Pascal VOC,
# `parse_json` for COCO) and, with `load_images_into_memory=True`, decodes every image up
# front (fast epochs, if they fit in memory). It then builds batches with
# transformations, encoded by the label encoder.

# %%
train_dataset = DataGenerator(load_images_into_memory=True, hdf5_dataset_path=None)
val_dataset = DataGenerator(load_images_into_memory=True, hdf5_dataset_path=None)
if use_shapes:
    train_dataset.parse_xml(
        images_dirs=[shapes["images_dir"]],
        image_set_filenames=[shapes["trainval"]],
        annotations_dirs=[shapes["annotations_dir"]],
        classes=classes,
    )
    val_dataset.parse_xml(
        images_dirs=[shapes["images_dir"]],
        image_set_filenames=[shapes["test"]],
        annotations_dirs=[shapes["annotations_dir"]],
        classes=classes,
        exclude_difficult=True,
    )
    train_dataset.load_images()
    val_dataset.load_images()
else:
    input_format = ["image_name", "xmin", "xmax", "ymin", "ymax", "class_id"]
    train_dataset.parse_csv(
        images_dir=images_dir, labels_filename=train_labels_filename, input_format=input_format, include_classes="all"
    )
    val_dataset.parse_csv(
        images_dir=images_dir, labels_filename=val_labels_filename, input_format=input_format, include_classes="all"
    )
print("Training images:", train_dataset.get_dataset_size(), " validation images:", val_dataset.get_dataset_size())

# %% [markdown]
# The transformations: every image is resized to the model's input, and the training images
# are augmented by the original's `DataAugmentationConstantInputSize` chain. Each step runs
# with its probability (the last number of its tuple):
#
# * `random_brightness` (add a value from -48 to 48), `random_contrast`, `random_saturation`
#   (multiply by 0.5-1.8), `random_hue` (shift by up to 18): photometric changes;
# * `random_flip`: a horizontal flip;
# * `random_translate`: a shift of 3-50 % of the image height and width;
# * `random_scale`: a zoom in or out by 0.5-2;
# * after the geometric steps, boxes mostly outside the image are dropped
#   (`overlap_criterion='area'`, `bounds_box_filter`: at least 30 % of a box's area inside),
#   and a result with fewer than `n_boxes_min` boxes half inside (`bounds_validator`) is
#   tried again, up to `n_trials_max` times; `clip_boxes` clips the boxes to the image, and
#   `background` fills the uncovered pixels.

# %%
resize = Resize(height=img_height, width=img_width)
data_augmentation_chain = DataAugmentationConstantInputSize(
    random_brightness=(-48, 48, 0.5),
    random_contrast=(0.5, 1.8, 0.5),
    random_saturation=(0.5, 1.8, 0.5),
    random_hue=(18, 0.5),
    random_flip=0.5,
    random_translate=((0.03, 0.5), (0.03, 0.5), 0.5),
    random_scale=(0.5, 2.0, 0.5),
    n_trials_max=3,
    clip_boxes=True,
    overlap_criterion="area",
    bounds_box_filter=(0.3, 1.0),
    bounds_validator=(0.5, 1.0),
    n_boxes_min=1,
    background=(0, 0, 0),
)
# %% [markdown]
# The label encoder turns each image's boxes into the training target of every anchor:
# `SSDInputEncoder.from_model` reads the anchor settings from the model, so the two cannot
# disagree. Matching: every box gets the anchor it overlaps most, and with
# `matching_type='multi'` also every anchor that overlaps it by `pos_iou_threshold` or more;
# anchors that overlap no box by `neg_iou_limit` or more are background; the ones in
# between are neutral and do not count in the loss.
#
# `keras_dataset` wraps the data set for `model.fit`: a `keras.utils.PyDataset` with a known
# number of batches per epoch, a new order per epoch (`shuffle`), batches built ahead by
# worker threads (or processes, `use_multiprocessing=True`), and `returns` naming what each
# batch holds.

# %%
# The anchor settings and feature-map sizes come from the model's AnchorBoxes layers.
ssd_input_encoder = SSDInputEncoder.from_model(model, matching_type="multi", pos_iou_threshold=0.5, neg_iou_limit=0.3)
train_data = train_dataset.keras_dataset(
    batch_size=batch_size,
    shuffle=True,
    transformations=[resize, data_augmentation_chain],
    label_encoder=ssd_input_encoder,
    returns={"processed_images", "encoded_labels"},
    keep_images_without_gt=False,
)
val_data = val_dataset.keras_dataset(
    batch_size=batch_size,
    shuffle=False,
    transformations=[resize],
    label_encoder=ssd_input_encoder,
    returns={"processed_images", "encoded_labels"},
    keep_images_without_gt=False,
)

# %% [markdown]
# ## 4. Train
#
# The callbacks of the original: `ModelCheckpoint` keeps the best model by validation loss
# (the file name records the epoch and the losses), `CSVLogger` the losses per epoch,
# `EarlyStopping` ends training when the validation loss stops improving for 10 epochs,
# `ReduceLROnPlateau` divides the learning rate by 5 after 8 epochs without improvement,
# `TerminateOnNaN` stops on a NaN loss. (`ssd-keras train` and `ssd_keras.training.train`
# do all this and also resume exactly after a crash.)

# %%
callbacks = [
    ModelCheckpoint(
        filepath=os.path.join(WORK_DIR, "ssd7_epoch-{epoch:02d}_loss-{loss:.4f}_val_loss-{val_loss:.4f}.keras"),
        monitor="val_loss",
        verbose=1,
        save_best_only=True,
        save_weights_only=False,
        mode="auto",
    ),
    CSVLogger(filename=os.path.join(WORK_DIR, "ssd7_training_log.csv"), separator=",", append=True),
    EarlyStopping(monitor="val_loss", min_delta=0.0, patience=10, verbose=1),
    # Keras 3: `min_delta` replaces `epsilon`.
    ReduceLROnPlateau(
        monitor="val_loss", factor=0.2, patience=8, verbose=1, min_delta=0.001, cooldown=0, min_lr=0.00001
    ),
    TerminateOnNaN(),
]
history = model.fit(
    train_data,
    steps_per_epoch=steps_per_epoch,
    epochs=epochs,
    callbacks=callbacks,
    validation_data=val_data,
    initial_epoch=0,
)

# %%
plt.figure(figsize=(8, 4))
plt.plot(history.history["loss"], label="loss")
plt.plot(history.history["val_loss"], label="val_loss")
plt.xlabel("epoch")
plt.legend()
plt.title("SSD7 training")
plt.show()


# %% [markdown]
# ## 5. Predictions
#
# The model in `'training'` mode outputs raw predictions; `decode_detections` turns them
# into boxes: it undoes the offset encoding, keeps the (anchor, class) pairs scored above
# `confidence_thresh`, runs non-maximum suppression per class (a box overlapping a
# higher-scored one of its class by more than `iou_threshold` is dropped) and keeps the
# `top_k` best. Its rows are `[class_id, confidence, xmin, ymin, xmax, ymax]` in the
# model's input pixels. (A model built with `mode='inference'` does the same inside the
# graph.)

# %%
# Draws detections (coloured, labelled) and ground truth (green) with matplotlib.
from ssd_keras.utils.plotting import plot_detections

# %%
predict_generator = val_dataset.generate(
    batch_size=1,
    shuffle=True,
    transformations=[resize],
    label_encoder=None,
    returns={"processed_images", "processed_labels", "filenames"},
    keep_images_without_gt=False,
)
batch_images, batch_labels, batch_filenames = next(predict_generator)
y_pred = model.predict(batch_images)
y_pred_decoded = decode_detections(
    y_pred,
    confidence_thresh=0.5,
    iou_threshold=0.45,
    top_k=200,
    normalize_coords=normalize_coords,
    img_height=img_height,
    img_width=img_width,
)
print("Image:", batch_filenames[0])
print("Ground truth [class, xmin, ymin, xmax, ymax]:")
print(np.round(batch_labels[0], 1))
print("Detections [class, conf, xmin, ymin, xmax, ymax]:")
print(np.round(y_pred_decoded[0], 2))
plt.figure(figsize=(8, 6))
plot_detections(batch_images[0], y_pred_decoded[0], classes, batch_labels[0])
plt.show()

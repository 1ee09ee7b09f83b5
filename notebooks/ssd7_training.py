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
# The small SSD7 of the original, trained from scratch. The original used the Udacity traffic
# data set (5 classes, 300x480 images, CSV labels); its parameters are in the cell below. With
# `SSD_KERAS_SMOKE=1` (and by default when the CSV is missing) it trains on the synthetic shapes.

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
adam = Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
model.compile(optimizer=adam, loss=ssd_loss.compute_loss)
model.optimizer.build(model.trainable_variables)  # optional: TensorFlow then traces the training step once, not twice

# %% [markdown]
# ## 3. Data

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

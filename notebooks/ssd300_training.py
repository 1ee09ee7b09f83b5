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
# # SSD300 training (Pascal VOC 2007+2012)
#
# The original walkthrough for Keras 3: build SSD300 in training mode, load the reduced VGG-16
# base, read Pascal VOC, train with the paper's augmentation and learning-rate schedule
# (`model.fit` on `DataGenerator.keras_dataset`, which replaces `fit_generator`), then look at
# predictions. With `SSD_KERAS_SMOKE=1` it runs on the synthetic shapes data in a few steps.

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
from math import ceil

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.callbacks import CSVLogger, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN
from keras.optimizers import SGD

from ssd_keras.data.augmentation.original_ssd import SSDDataAugmentation
from ssd_keras.data.generator import DataGenerator
from ssd_keras.data.transforms.geometric import Resize
from ssd_keras.data.transforms.inverse import apply_inverse_transforms
from ssd_keras.data.transforms.photometric import ConvertTo3Channels
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.encoding.output_decoder import decode_detections
from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.ssd300 import ssd_300

# %matplotlib inline

# %% [markdown]
# ## 1. Parameters: data, weights, schedule
#
# SSD300 is trained on the union of the Pascal VOC 2007 and 2012 `trainval` splits ("07+12",
# 16,551 images) and validated on VOC 2007 `test` (4,952 images). The base network starts
# from the **reduced VGG-16**: VGG-16 trained on ImageNet, with its fully connected `fc6`
# and `fc7` turned into convolutions and subsampled, as the SSD authors did. The original
# trained 120,000 steps of batch 32 (120 epochs of 1,000 steps).

# %%
# Pascal VOC (edit these paths).
VOC_2007_ROOT = "../datasets/VOCdevkit/VOC2007"
VOC_2012_ROOT = "../datasets/VOCdevkit/VOC2012"
images_dirs = [f"{VOC_2007_ROOT}/JPEGImages", f"{VOC_2012_ROOT}/JPEGImages"]
annotations_dirs = [f"{VOC_2007_ROOT}/Annotations", f"{VOC_2012_ROOT}/Annotations"]
trainval_sets = [f"{VOC_2007_ROOT}/ImageSets/Main/trainval.txt", f"{VOC_2012_ROOT}/ImageSets/Main/trainval.txt"]
test_sets = [f"{VOC_2007_ROOT}/ImageSets/Main/test.txt"]
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
# The reduced VGG-16 of the original (or write one from Keras' VGG-16 with
# ssd_keras.models.vgg16_reduced.save_vgg16_fc_reduced).
weights_path = "VGG_ILSVRC_16_layers_fc_reduced.h5"
batch_size = 32
epochs, steps_per_epoch = 120, 1000

# %%
if SMOKE:
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=16, n_test=8, seed=0, verbose=False)
    images_dirs, annotations_dirs = [shapes["images_dir"]], [shapes["annotations_dir"]]
    trainval_sets, test_sets = [shapes["trainval"]], [shapes["test"]]
    classes = shapes["classes"]
    from ssd_keras.models.vgg16_reduced import save_vgg16_fc_reduced

    weights_path = save_vgg16_fc_reduced(
        os.path.join(WORK_DIR, "vgg16_fc_reduced.h5"), keras.applications.VGG16(weights=None)
    )
    batch_size, epochs, steps_per_epoch = 2, 1, 2

# %% [markdown]
# ## 2. The model
#
# `ssd_300` builds the paper's model with the original's layer names, so the published
# weights load by name. Its parameters, in the order of the cell below:
#
# * `mean_color` and `swap_channels`: the model takes RGB images in 0-255, subtracts the
#   ImageNet mean and reorders the channels to BGR inside the graph, as the Caffe weights
#   expect.
# * `scales`: the anchor size of each of the six predictor layers (conv4_3, fc7, conv6_2 ...
#   conv9_2) as a fraction of the image side, plus one for the last layer's second square
#   anchor. The COCO-trained models use smaller scales (their objects are smaller).
# * `aspect_ratios`: per predictor layer, the width-to-height ratios of its anchors; 3 and
#   1/3 on the middle layers. With `two_boxes_for_ar1`, each layer has a second square
#   anchor: 4 or 6 anchors per position, 8,732 in all.
# * `steps`: the distance between anchor centres in pixels, per layer (the Caffe values,
#   not the image size divided by the feature-map size); `offsets`: the first centre at half
#   a step.
# * `variances`: the offsets of the box centres are divided by 0.1 and those of the sizes by
#   0.2 in the loss, which balances it against the classification loss.
# * `l2_regularization=0.0005`: weight decay on every kernel.
#
# `load_weights(..., by_name=True)` loads the VGG layers from the reduced VGG-16 file and
# leaves the new layers (conv6 to conv9, the predictors) at their random initialisation.

# %%
img_height, img_width, img_channels = 300, 300, 3
mean_color = [123, 117, 104]  # the means of the ImageNet images the VGG-16 base was trained on
swap_channels = [2, 1, 0]  # the Caffe weights expect BGR
n_classes = len(classes) - 1  # positive classes
scales_pascal = [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
scales_coco = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
scales = scales_pascal
aspect_ratios = [
    [1.0, 2.0, 0.5],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5],
    [1.0, 2.0, 0.5],
]
two_boxes_for_ar1 = True
steps = [8, 16, 32, 64, 100, 300]
offsets = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
clip_boxes = False
variances = [0.1, 0.1, 0.2, 0.2]
normalize_coords = True

K.clear_session()
model = ssd_300(
    image_size=(img_height, img_width, img_channels),
    n_classes=n_classes,
    mode="training",
    l2_regularization=0.0005,
    scales=scales,
    aspect_ratios_per_layer=aspect_ratios,
    two_boxes_for_ar1=two_boxes_for_ar1,
    steps=steps,
    offsets=offsets,
    clip_boxes=clip_boxes,
    variances=variances,
    normalize_coords=normalize_coords,
    subtract_mean=mean_color,
    swap_channels=swap_channels,
)
model.load_weights(weights_path, by_name=True)

# The paper's optimizer: SGD with momentum 0.9 at a learning rate of 1e-3 (divided by 10
# later by the schedule below); the loss mines 3 negatives per positive.
sgd = SGD(learning_rate=0.001, momentum=0.9, nesterov=False)  # Keras 3: learning_rate, no decay argument
# adam = Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
model.compile(optimizer=sgd, loss=ssd_loss.compute_loss)
model.optimizer.build(model.trainable_variables)  # optional: TensorFlow then traces the training step once, not twice

# %% [markdown]
# To continue from a saved model instead (Keras 3 `.keras` files; the `custom_objects` of the
# original still work but are no longer needed):
#
# ```python
# model = load_model("ssd300_pascal_07+12_epoch-10.keras",
#                    custom_objects={"AnchorBoxes": AnchorBoxes, "L2Normalization": L2Normalization,
#                                    "compute_loss": ssd_loss.compute_loss})
# ```

# %% [markdown]
# ## 3. Data: parse, (optionally) convert to HDF5, augment, encode
#
# `parse_xml` reads the VOC annotations of every image set listed; `exclude_difficult`
# leaves out the boxes flagged difficult (kept for training, left out of validation, as the
# original did). Reading tens of thousands of JPEG files each epoch is slow on some disks:
# `create_hdf5_dataset` writes the images and labels into one HDF5 file, which a
# `DataGenerator(hdf5_dataset_path=...)` then reads instead.

# %%
train_dataset = DataGenerator(load_images_into_memory=False, hdf5_dataset_path=None)
val_dataset = DataGenerator(load_images_into_memory=False, hdf5_dataset_path=None)
train_dataset.parse_xml(
    images_dirs=images_dirs,
    image_set_filenames=trainval_sets,
    annotations_dirs=annotations_dirs,
    classes=classes,
    include_classes="all",
    exclude_truncated=False,
    exclude_difficult=False,
    ret=False,
)
val_dataset.parse_xml(
    images_dirs=images_dirs[:1],
    image_set_filenames=test_sets,
    annotations_dirs=annotations_dirs[:1],
    classes=classes,
    include_classes="all",
    exclude_truncated=False,
    exclude_difficult=True,
    ret=False,
)
# Optional: one HDF5 file per split makes reading much faster.
train_dataset.create_hdf5_dataset(
    file_path=os.path.join(WORK_DIR, "dataset_pascal_voc_07+12_trainval.h5"),
    resize=False,
    variable_image_size=True,
    verbose=True,
)
print("Training images:", train_dataset.get_dataset_size(), " validation images:", val_dataset.get_dataset_size())

# %%
# %% [markdown]
# The training images go through the paper's augmentation, `SSDDataAugmentation`: photometric
# distortions (brightness, contrast, saturation, hue, in random order), "expand" (the image
# placed at random on a canvas up to 4 times its size, filled with the mean colour: small
# objects), a random crop whose boxes overlap it by at least a randomly chosen IoU
# (objects cut), a horizontal flip, and the resize to 300x300 with a random interpolation.
# Validation images are only resized.

# %%
ssd_data_augmentation = SSDDataAugmentation(img_height=img_height, img_width=img_width, background=mean_color)
convert_to_3_channels = ConvertTo3Channels()
resize = Resize(height=img_height, width=img_width)

# The encoder reads the anchor settings (image size, scales, aspect ratios, steps, offsets,
# clipping, variances, coords) and the feature-map sizes from the model's AnchorBoxes
# layers, so the two cannot disagree; only the matching thresholds are the encoder's own.
# (The original's keyword-by-keyword call still works, with `model.get_layer(name).output.shape[1:3]`
# for the predictor sizes: Keras 3 layers have no `output_shape`.)
ssd_input_encoder = SSDInputEncoder.from_model(model, matching_type="multi", pos_iou_threshold=0.5, neg_iou_limit=0.5)

# keras_dataset() is a keras.utils.PyDataset: `fit` takes it directly and knows its length.
train_data = train_dataset.keras_dataset(
    batch_size=batch_size,
    shuffle=True,
    transformations=[ssd_data_augmentation],
    label_encoder=ssd_input_encoder,
    returns={"processed_images", "encoded_labels"},
    keep_images_without_gt=False,
)
val_data = val_dataset.keras_dataset(
    batch_size=batch_size,
    shuffle=False,
    transformations=[convert_to_3_channels, resize],
    label_encoder=ssd_input_encoder,
    returns={"processed_images", "encoded_labels"},
    keep_images_without_gt=False,
)


# %% [markdown]
# ## 4. Train
#
# The schedule of the original's reproduction of the Caffe training: a learning rate of 1e-3
# for 80 epochs (80,000 steps), then 1e-4 for 20 and 1e-5 for the last 20. `ModelCheckpoint`
# keeps the models that improve the validation loss; `TerminateOnNaN` stops a run whose loss
# diverges (SGD from a fresh head can, in the first steps: start again).


# %%
def lr_schedule(epoch):
    if epoch < 80:
        return 0.001
    elif epoch < 100:
        return 0.0001
    else:
        return 0.00001


model_checkpoint = ModelCheckpoint(
    filepath=os.path.join(
        WORK_DIR, "ssd300_pascal_07+12_epoch-{epoch:02d}_loss-{loss:.4f}_val_loss-{val_loss:.4f}.keras"
    ),
    monitor="val_loss",
    verbose=1,
    save_best_only=True,
    save_weights_only=False,
    mode="auto",
    save_freq="epoch",
)
csv_logger = CSVLogger(
    filename=os.path.join(WORK_DIR, "ssd300_pascal_07+12_training_log.csv"), separator=",", append=True
)
learning_rate_scheduler = LearningRateScheduler(schedule=lr_schedule, verbose=1)
terminate_on_nan = TerminateOnNaN()
callbacks = [model_checkpoint, csv_logger, learning_rate_scheduler, terminate_on_nan]

initial_epoch = 0
history = model.fit(
    train_data,
    steps_per_epoch=steps_per_epoch,
    epochs=epochs,
    callbacks=callbacks,
    validation_data=val_data,
    validation_steps=ceil(val_dataset.get_dataset_size() / batch_size),
    initial_epoch=initial_epoch,
)

# %%
plt.figure(figsize=(8, 4))
plt.plot(history.history["loss"], label="loss")
plt.plot(history.history["val_loss"], label="val_loss")
plt.xlabel("epoch")
plt.legend()
plt.title("SSD300 training")
plt.show()


# %% [markdown]
# ## 5. Predictions on validation images
#
# The model in training mode outputs raw predictions; `decode_detections` turns them into
# boxes in the 300x300 frame, and `apply_inverse_transforms` maps them back onto the
# original image with the inverse of the resize the batch went through.

# %%
# Draws detections (coloured, labelled) and ground truth (green) with matplotlib.
from ssd_keras.utils.plotting import plot_detections

# %%
predict_generator = val_dataset.generate(
    batch_size=1,
    shuffle=True,
    transformations=[convert_to_3_channels, resize],
    label_encoder=None,
    returns={"processed_images", "filenames", "inverse_transform", "original_images", "original_labels"},
    keep_images_without_gt=False,
)
batch_images, batch_filenames, batch_inverse_transforms, batch_original_images, batch_original_labels = next(
    predict_generator
)
y_pred = model.predict(batch_images)
y_pred_decoded = decode_detections(
    y_pred,
    confidence_thresh=0.5,
    iou_threshold=0.4,
    top_k=200,
    normalize_coords=normalize_coords,
    img_height=img_height,
    img_width=img_width,
)
y_pred_decoded_inv = apply_inverse_transforms(y_pred_decoded, batch_inverse_transforms)
print("Image:", batch_filenames[0])
print("Detections [class, conf, xmin, ymin, xmax, ymax]:")
print(np.round(y_pred_decoded_inv[0], 2))
plt.figure(figsize=(10, 7))
plot_detections(batch_original_images[0], y_pred_decoded_inv[0], classes, batch_original_labels[0])
plt.show()

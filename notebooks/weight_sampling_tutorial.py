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
# # Weight sub-sampling: an SSD300 for your own classes from the COCO-trained weights
#
# The trained SSD300 classifies 80 COCO classes (81 with background). To fine-tune it on a data
# set with, say, 8 classes, keep only those classes' channels in the six classifier layers
# (`*_mbox_conf`) and load the result into an SSD300 with `n_classes=8`: the localisation layers
# and the base network keep everything they learnt. With `SSD_KERAS_SMOKE=1` the source
# weights are random (written in the original's `.h5` layout).

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
import shutil

import h5py
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.optimizers import Adam

from ssd_keras.data.generator import DataGenerator
from ssd_keras.data.transforms.geometric import Resize
from ssd_keras.data.transforms.patch_sampling import RandomMaxCropFixedAR
from ssd_keras.data.transforms.photometric import ConvertTo3Channels
from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.ssd300 import ssd_300
from ssd_keras.models.weight_sampling import sample_tensors

# %matplotlib inline

# %% [markdown]
# ## 1. The source weights
#
# The SSD300 trained on COCO, and the file the sub-sampled weights go to (a copy of the
# source, whose classifier layers are then replaced). The anchor settings are those of the
# COCO model: they do not depend on the classes, and the fine-tuned model keeps them.

# %%
weights_source_path = "VGG_coco_SSD_300x300_iter_400000.h5"
weights_destination_path = "VGG_coco_SSD_300x300_iter_400000_subsampled_8_classes.h5"
coco_scales = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
aspect_ratios = [
    [1.0, 2.0, 0.5],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    [1.0, 2.0, 0.5],
    [1.0, 2.0, 0.5],
]

# %%
if SMOKE:
    from ssd_keras.models.vgg16_reduced import write_legacy_h5

    coco_model = ssd_300(image_size=(300, 300, 3), n_classes=80, mode="training", scales=coco_scales)
    weights_source_path = os.path.join(WORK_DIR, "coco_random.h5")
    weights_destination_path = os.path.join(WORK_DIR, "subsampled_8_classes.h5")
    write_legacy_h5(
        weights_source_path,
        {layer.name: [w.numpy() for w in layer.weights] for layer in coco_model.layers if layer.weights},
    )
    del coco_model
shutil.copy(weights_source_path, weights_destination_path)
weights_source_file = h5py.File(weights_source_path, "r")
weights_destination_file = h5py.File(weights_destination_path, "r+")

# %% [markdown]
# ## 2. Choose the classes and sub-sample the classifier layers
#
# Each classifier layer predicts, at every position, 81 scores for each of its anchors: its
# kernel has `n_anchors * 81` output channels, anchor by anchor. Keeping a class means
# keeping its channel in every anchor's block of 81. `classes_of_interest` lists the
# source's class indices to keep, background (0) first, in the order the new model will
# number them: here car, truck, person, bicycle, traffic light, motorcycle, bus and stop sign
# (COCO's indices 3, 8, 1, 2, 10, 4, 6, 12 in the original's files). An integer instead keeps
# the background and that many minus one classes at random, for classes COCO does not have.
#
# `sample_tensors` cuts (or, for more classes than the source, extends) the kernel and the
# bias along the output-channel axis: `sampling_instructions` gives, per axis of the kernel,
# the indices to keep or the new size; `axes=[[3]]` says that the bias's only axis follows
# the kernel's axis 3; new channels, if any, start from `init`.

# %%
classifier_names = [
    "conv4_3_norm_mbox_conf",
    "fc7_mbox_conf",
    "conv6_2_mbox_conf",
    "conv7_2_mbox_conf",
    "conv8_2_mbox_conf",
    "conv9_2_mbox_conf",
]
conv4_3_norm_mbox_conf_kernel = weights_source_file[classifier_names[0]][classifier_names[0]]["kernel:0"]
print("Shape of the conv4_3_norm_mbox_conf kernel:", conv4_3_norm_mbox_conf_kernel.shape)  # (3, 3, 512, 4 * 81)

n_classes_source = 81
classes_of_interest = [0, 3, 8, 1, 2, 10, 4, 6, 12]  # background, then 8 COCO classes in the order we want
# classes_of_interest = 9                             # or: background and 8 random classes

for name in classifier_names:
    kernel = weights_source_file[name][name]["kernel:0"][()]
    bias = weights_source_file[name][name]["bias:0"][()]
    height, width, in_channels, out_channels = kernel.shape
    if isinstance(classes_of_interest, (list, tuple)):
        subsampling_indices = []
        for i in range(int(out_channels / n_classes_source)):
            indices = np.array(classes_of_interest) + i * n_classes_source
            subsampling_indices.append(indices)
        subsampling_indices = list(np.concatenate(subsampling_indices))
    elif isinstance(classes_of_interest, int):
        subsampling_indices = int(classes_of_interest * (out_channels / n_classes_source))
    else:
        raise ValueError("`classes_of_interest` must be either an integer or a list/tuple.")
    new_kernel, new_bias = sample_tensors(
        weights_list=[kernel, bias],
        sampling_instructions=[height, width, in_channels, subsampling_indices],
        axes=[[3]],
        init=["gaussian", "zeros"],
        mean=0.0,
        stddev=0.005,
    )
    del weights_destination_file[name][name]["kernel:0"]
    del weights_destination_file[name][name]["bias:0"]
    weights_destination_file[name][name].create_dataset(name="kernel:0", data=new_kernel)
    weights_destination_file[name][name].create_dataset(name="bias:0", data=new_bias)

print(
    "Shape of the new conv4_3_norm_mbox_conf kernel:",
    weights_destination_file[classifier_names[0]][classifier_names[0]]["kernel:0"].shape,
)
weights_source_file.close()
weights_destination_file.close()

# %% [markdown]
# (`ssd_keras.models.weight_sampling.subsample_classifier_weights(source, destination, classes_of_interest)`
# does the loop above in one call, and `ssd-keras sample-weights` from the shell.)
#
# ## 3. Load the sub-sampled weights into an 8-class SSD300
#
# Every layer of an 8-class SSD300 now finds weights of its shape in the file: the base
# network and the localisation layers unchanged, the classifiers cut to 9 scores per anchor.
# The model can detect these eight classes at once, and trains on a data set of them from
# there (fine-tuning), much faster than from the VGG-16 base.

# %%
n_classes = 8
K.clear_session()
model = ssd_300(
    image_size=(300, 300, 3),
    n_classes=n_classes,
    mode="inference",
    l2_regularization=0.0005,
    scales=coco_scales,
    aspect_ratios_per_layer=aspect_ratios,
    two_boxes_for_ar1=True,
    steps=[8, 16, 32, 64, 100, 300],
    offsets=[0.5] * 6,
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
model.load_weights(weights_destination_path, by_name=True)
model.compile(optimizer=Adam(learning_rate=0.001), loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss)
print("conv4_3_norm_mbox_conf kernel in the model:", model.get_layer("conv4_3_norm_mbox_conf").get_weights()[0].shape)

# %% [markdown]
# ## 4. Try it on a few images (random crops with the model's aspect ratio)

# %%
images_dir = "../datasets/udacity_driving_datasets/"
labels_filename = "../datasets/udacity_driving_datasets/labels_val.csv"
if SMOKE or not os.path.isfile(labels_filename):
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=4, n_test=0, seed=0, verbose=False)
    images_dir = shapes["images_dir"]
    labels_filename = os.path.join(WORK_DIR, "labels.csv")
    with open(labels_filename, "w") as f:
        f.write("frame,xmin,xmax,ymin,ymax,class_id\n")
        for name in sorted(os.listdir(images_dir)):
            f.write(f"{name},10,60,10,60,1\n")
dataset = DataGenerator()
dataset.parse_csv(
    images_dir=images_dir,
    labels_filename=labels_filename,
    input_format=["image_name", "xmin", "xmax", "ymin", "ymax", "class_id"],
    include_classes="all",
    random_sample=False,
)
generator = dataset.generate(
    batch_size=1,
    shuffle=True,
    transformations=[ConvertTo3Channels(), RandomMaxCropFixedAR(patch_aspect_ratio=1.0), Resize(300, 300)],
    label_encoder=None,
    returns={"processed_images", "processed_labels", "filenames"},
    keep_images_without_gt=False,
)
batch_images, batch_labels, batch_filenames = next(generator)
y_pred = model.predict(batch_images)
y_pred_thresh = [y_pred[k][y_pred[k, :, 1] > 0.5] for k in range(y_pred.shape[0])]
print("Image:", batch_filenames[0])
print(np.round(y_pred_thresh[0], 2))
plt.figure(figsize=(6, 6))
plt.imshow(batch_images[0])
plt.axis("off")
plt.show()

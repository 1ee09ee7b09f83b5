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
# # SSD300 evaluation on Pascal VOC 2007 test
#
# Computes the mean average precision with the devkit's rules (`Evaluator`). The original
# recorded mAP 0.776 (11-point, 'sample') and 0.802 ('integrate') for the ported
# `VGG_VOC0712_SSD_300x300_ft_iter_120000.h5`. With `SSD_KERAS_SMOKE=1`: random weights,
# synthetic images, a mAP near zero.

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
from keras.optimizers import Adam

from ssd_keras.data.generator import DataGenerator
from ssd_keras.evaluation.voc import Evaluator
from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.ssd300 import ssd_300

# %matplotlib inline

# %% [markdown]
# ## 1. Parameters

# %%
img_height, img_width = 300, 300
n_classes = 20
model_mode = "inference"
weights_path = "VGG_VOC0712_SSD_300x300_ft_iter_120000.h5"
VOC_2007_ROOT = "../datasets/VOCdevkit/VOC2007"
images_dir, annotations_dir = f"{VOC_2007_ROOT}/JPEGImages", f"{VOC_2007_ROOT}/Annotations"
image_set_filename = f"{VOC_2007_ROOT}/ImageSets/Main/test.txt"
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

# %%
if SMOKE:
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=16, n_test=8, seed=0, verbose=False)
    images_dir, annotations_dir, image_set_filename = shapes["images_dir"], shapes["annotations_dir"], shapes["test"]
    classes = shapes["classes"]
    n_classes = len(classes) - 1
    weights_path = None  # random weights

# %% [markdown]
# ## 2. The model
#
# An SSD300 in `'inference'` mode, whose decoding layer keeps every detection above
# `confidence_thresh=0.01`: the average precision integrates over all confidence levels, so
# low-scored detections count too (a threshold of 0.5, right for display, would cut the
# precision-recall curve short and lower the AP). `top_k=200` detections per image are
# kept. The weights are those of the "07+12+COCO" model, which was trained with the COCO
# anchor scales on COCO first and fine-tuned on VOC.

# %%
K.clear_session()
model = ssd_300(
    image_size=(img_height, img_width, 3),
    n_classes=n_classes,
    mode=model_mode,
    l2_regularization=0.0005,
    scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05],
    aspect_ratios_per_layer=[
        [1.0, 2.0, 0.5],
        [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
        [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
        [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
        [1.0, 2.0, 0.5],
        [1.0, 2.0, 0.5],
    ],
    two_boxes_for_ar1=True,
    steps=[8, 16, 32, 64, 100, 300],
    offsets=[0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    clip_boxes=False,
    variances=[0.1, 0.1, 0.2, 0.2],
    normalize_coords=True,
    subtract_mean=[123, 117, 104],
    swap_channels=[2, 1, 0],
    confidence_thresh=0.01,
    iou_threshold=0.45,
    top_k=200,
    nms_max_output_size=400,
)
if weights_path is not None:
    model.load_weights(weights_path, by_name=True)
model.compile(
    optimizer=Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08),
    loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss,
)

# %% [markdown]
# ## 3. The data: difficult boxes are kept and count as neutral, as in the devkit
#
# Pascal VOC flags objects that are hard to recognise as "difficult". The official
# evaluation (the VOC devkit's `VOCevaldet`) counts them neither way: missing one is no
# miss, and a detection that matches one is no false positive. So the test set is read with
# `exclude_difficult=False`, and the `Evaluator` treats those boxes as neutral
# (`ignore_neutral_boxes=True` below).

# %%
dataset = DataGenerator()
dataset.parse_xml(
    images_dirs=[images_dir],
    image_set_filenames=[image_set_filename],
    annotations_dirs=[annotations_dir],
    classes=classes,
    include_classes="all",
    exclude_truncated=False,
    exclude_difficult=False,
    ret=False,
)

# %% [markdown]
# ## 4. Evaluate
#
# The `Evaluator` predicts on every image (`data_generator_mode='resize'` resizes them to the
# model's input; the boxes are mapped back to the original image), then follows the devkit:
#
# * `matching_iou_threshold=0.5`: a detection is a true positive if it overlaps a box of its
#   class that no higher-scored detection has matched, by an IoU of 0.5 or more;
#   `border_pixels='include'` computes IoUs with the devkit's +1-pixel convention.
# * `sorting_algorithm`: how the detections are ranked by confidence (ties in a stable
#   order with `'mergesort'`).
# * `average_precision_mode='sample'` with `num_recall_points=11`: the VOC2007 AP, the mean
#   of the best precision at recall 0, 0.1, ..., 1; `'integrate'` gives the VOC2010+ AP, the
#   area under the precision envelope.
#
# It returns the mean AP and, on request, the per-class APs, precisions and recalls.

# %%
evaluator = Evaluator(model=model, n_classes=n_classes, data_generator=dataset, model_mode=model_mode)
results = evaluator(
    img_height=img_height,
    img_width=img_width,
    batch_size=8,
    data_generator_mode="resize",
    round_confidences=False,
    matching_iou_threshold=0.5,
    border_pixels="include",
    sorting_algorithm="quicksort",
    average_precision_mode="sample",
    num_recall_points=11,
    ignore_neutral_boxes=True,
    return_precisions=True,
    return_recalls=True,
    return_average_precisions=True,
    verbose=True,
)
mean_average_precision, average_precisions, precisions, recalls = results
for i in range(1, len(average_precisions)):
    print("{:<14}{:<6}{}".format(classes[i], "AP", round(average_precisions[i], 3)))
print()
print("{:<14}{:<6}{}".format("", "mAP", round(mean_average_precision, 3)))

# %%
m = max((n_classes + 1) // 2, 2)
n = 2
fig, cells = plt.subplots(m, n, figsize=(n * 8, m * 8), squeeze=False)
for i in range(m):
    for j in range(n):
        if n * i + j + 1 > n_classes:
            cells[i, j].axis("off")
            continue
        cells[i, j].plot(recalls[n * i + j + 1], precisions[n * i + j + 1], color="blue", linewidth=1.0)
        cells[i, j].set_xlabel("recall", fontsize=14)
        cells[i, j].set_ylabel("precision", fontsize=14)
        cells[i, j].grid(True)
        cells[i, j].set_xticks(np.linspace(0, 1, 11))
        cells[i, j].set_yticks(np.linspace(0, 1, 11))
        cells[i, j].set_title(f"{classes[n * i + j + 1]}, AP: {average_precisions[n * i + j + 1]:.3f}", fontsize=16)
plt.show()

# %% [markdown]
# ## 5. Advanced use: the steps one by one
#
# The same evaluation, step by step, for those who want to look at the intermediate
# results: the ground-truth boxes per class, the matching of the predictions (true and false
# positives per class, in descending confidence), the cumulative precision and recall, the
# AP per class and their mean.

# %%
evaluator.get_num_gt_per_class(ignore_neutral_boxes=True, verbose=False, ret=False)
evaluator.match_predictions(
    ignore_neutral_boxes=True,
    matching_iou_threshold=0.5,
    border_pixels="include",
    sorting_algorithm="quicksort",
    verbose=True,
    ret=False,
)
precisions, recalls = evaluator.compute_precision_recall(verbose=True, ret=True)
average_precisions = evaluator.compute_average_precisions(
    mode="integrate", num_recall_points=11, verbose=True, ret=True
)
mean_average_precision = evaluator.compute_mean_average_precision(ret=True)
print("mAP ('integrate'):", round(mean_average_precision, 3))

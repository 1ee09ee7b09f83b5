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
# # SSD300 evaluation on MS COCO
#
# Writes the model's detections on COCO val2017 in the COCO results format
# (`predict_all_to_json`) and runs pycocotools' `COCOeval`. The original recorded AP 0.247 and
# AP50 0.424 for `VGG_coco_SSD_300x300_iter_400000.h5`. With `SSD_KERAS_SMOKE=1`: random
# weights on a small COCO-format file made from the synthetic shapes.

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
import json

from keras import backend as K
from keras.optimizers import Adam
from pycocotools.coco import COCO  # pip install pycocotools (no more sys.path for cocoapi)
from pycocotools.cocoeval import COCOeval

from ssd_keras.data.generator import DataGenerator
from ssd_keras.evaluation.coco import get_coco_category_maps, predict_all_to_json
from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.ssd300 import ssd_300

# %% [markdown]
# ## 1. Parameters
#
# COCO's val2017 images and their annotations file, the file the detections are written to,
# and the weights of the SSD300 trained on COCO (80 classes, the COCO anchor scales).

# %%
dataset_root = "../datasets/MicrosoftCOCO"
images_dir = f"{dataset_root}/val2017/"
annotations_filename = f"{dataset_root}/annotations/instances_val2017.json"
results_file = "detections_val2017_ssd300_results.json"
weights_path = "VGG_coco_SSD_300x300_iter_400000.h5"
img_height, img_width = 300, 300
n_classes = 80

# %%
if SMOKE:
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=16, n_test=8, seed=0, verbose=False)
    from xml.etree import ElementTree

    # The shapes' test split as a COCO annotation file.
    names = shapes["classes"][1:]
    coco = {"images": [], "annotations": [], "categories": [{"id": 10 + i, "name": n} for i, n in enumerate(names)]}
    with open(shapes["test"]) as f:
        ids = [line.strip() for line in f if line.strip()]
    for image_id in ids:
        root = ElementTree.parse(os.path.join(shapes["annotations_dir"], image_id + ".xml")).getroot()
        coco["images"].append(
            {
                "id": int(image_id),
                "file_name": image_id + ".jpg",
                "width": int(root.find("size/width").text),
                "height": int(root.find("size/height").text),
            }
        )
        for obj in root.iter("object"):
            x1, y1, x2, y2 = (float(obj.find("bndbox/" + k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": int(image_id),
                    "iscrowd": 0,
                    "category_id": 10 + names.index(obj.find("name").text),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                }
            )
    images_dir = shapes["images_dir"]
    annotations_filename = os.path.join(WORK_DIR, "instances_shapes.json")
    with open(annotations_filename, "w") as f:
        json.dump(coco, f)
    results_file = os.path.join(WORK_DIR, "detections_shapes.json")
    weights_path, n_classes = None, len(names)

# %% [markdown]
# ## 2. The model
#
# As for Pascal VOC, the model decodes in the graph and keeps every detection above 0.01:
# COCO's AP integrates over all confidences and over IoU thresholds from 0.5 to 0.95.

# %%
K.clear_session()
model = ssd_300(
    image_size=(img_height, img_width, 3),
    n_classes=n_classes,
    mode="inference",
    l2_regularization=0.0005,
    scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
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
    offsets=[0.5] * 6,
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
model.compile(optimizer=Adam(learning_rate=0.001), loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss)

# %% [markdown]
# ## 3. Predict on the whole data set and write the results file
#
# `parse_json` reads the images of the annotations file (`ground_truth_available=False`:
# the boxes are pycocotools' to read, not ours). The model's class ids count 1 to 80 in
# the order of the file's categories, while COCO's category ids have gaps (1 to 90):
# `get_coco_category_maps` gives the maps between the two, and `predict_all_to_json`
# writes every detection as COCO's results format wants it, `{"image_id", "category_id",
# "score", "bbox": [x, y, width, height]}`, in the original image's pixels.

# %%
dataset = DataGenerator()
dataset.parse_json(
    images_dirs=[images_dir],
    annotations_filenames=[annotations_filename],
    ground_truth_available=False,
    include_classes="all",
    ret=False,
)
cats_to_classes, classes_to_cats, cats_to_names, classes_to_names = get_coco_category_maps(annotations_filename)
results = predict_all_to_json(
    out_file=results_file,
    model=model,
    img_height=img_height,
    img_width=img_width,
    classes_to_cats=classes_to_cats,
    data_generator=dataset,
    batch_size=20,
    data_generator_mode="resize",
    model_mode="inference",
    confidence_thresh=0.01,
    iou_threshold=0.45,
    top_k=200,
    normalize_coords=True,
)
print(len(results), "detections written to", results_file)

# %% [markdown]
# ## 4. COCOeval
#
# pycocotools computes COCO's twelve numbers: the AP averaged over IoU thresholds 0.5 to
# 0.95 (the main COCO metric), at 0.5 (VOC-like) and 0.75, for small, medium and large
# objects, and the average recall with 1, 10 and 100 detections per image.

# %%
coco_gt = COCO(annotations_filename)
if results:
    coco_dt = coco_gt.loadRes(results_file)
    image_ids = sorted(coco_gt.getImgIds())
    cocoEval = COCOeval(cocoGt=coco_gt, cocoDt=coco_dt, iouType="bbox")
    cocoEval.params.imgIds = image_ids
    cocoEval.evaluate()
    cocoEval.accumulate()
    cocoEval.summarize()
else:
    print("No detections above the threshold.")

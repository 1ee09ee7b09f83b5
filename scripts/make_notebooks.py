"""Writes the seven notebooks at the repository root from the cell sources below.

Run ``python scripts/make_notebooks.py`` after editing; the notebooks are committed
without outputs. Each notebook reads ``SSD_KERAS_SMOKE=1`` from the environment and then
runs on the synthetic shapes data set with tiny sizes and a few steps (the test suite
does that with nbmake); otherwise it uses the paths in its parameters cell, as the
original notebooks did.
"""

import os

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMOKE_CELL = '''import os
import tempfile

# SSD_KERAS_SMOKE=1 runs this notebook on the synthetic shapes data set with tiny
# sizes and a few steps (what the test suite does). Leave it unset for real runs.
SMOKE = os.environ.get("SSD_KERAS_SMOKE") == "1"
WORK_DIR = tempfile.mkdtemp(prefix="ssd_keras_nb_") if SMOKE else "."'''

SHAPES_CELL = '''if SMOKE:
    from data_generator.synthetic_shapes import make_shapes_dataset
    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=16, n_test=8, seed=0, verbose=False)'''

PLOT_DETECTIONS = '''def plot_detections(image, detections, classes, ground_truth=(), threshold=0.5, ax=None):
    """Draws detections [class, conf, xmin, ymin, xmax, ymax] (coloured) and ground truth [class, xmin, ymin, xmax, ymax] (green)."""
    colors = plt.cm.hsv(np.linspace(0, 1, len(classes))).tolist()
    ax = ax or plt.gca()
    ax.imshow(image)
    height, width = image.shape[:2]
    clip = lambda x1, y1, x2, y2: (np.clip(x1, 0, width), np.clip(y1, 0, height), np.clip(x2, 0, width), np.clip(y2, 0, height))
    for box in ground_truth:
        xmin, ymin, xmax, ymax = box[1:5]
        ax.add_patch(plt.Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, color="#00FF00", fill=False, linewidth=2))
    for box in detections:
        if box[1] < threshold:
            continue
        xmin, ymin, xmax, ymax = clip(*box[2:6])   # untrained models can predict boxes far outside
        color = colors[int(box[0])]
        ax.add_patch(plt.Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, color=color, fill=False, linewidth=2))
        ax.text(xmin, ymin, f"{classes[int(box[0])]}: {box[1]:.2f}", size="x-small", color="white", bbox={"facecolor": color, "alpha": 1.0})
    ax.axis("off")'''


def md(text):
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text):
    return nbformat.v4.new_code_cell(text.strip())


def ssd300_training():
    return [
        md("""
# SSD300 training (Pascal VOC 2007+2012)

The original walkthrough for Keras 3: build SSD300 in training mode, load the reduced VGG-16
base, read Pascal VOC, train with the paper's augmentation and learning-rate schedule
(`model.fit` on `DataGenerator.keras_dataset`, which replaces `fit_generator`), then look at
predictions. With `SSD_KERAS_SMOKE=1` it runs on the synthetic shapes data in a few steps.
"""),
        code(SMOKE_CELL),
        code("""
from math import ceil

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.callbacks import CSVLogger, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN
from keras.models import load_model
from keras.optimizers import SGD, Adam

from data_generator.data_augmentation_chain_original_ssd import SSDDataAugmentation
from data_generator.object_detection_2d_data_generator import DataGenerator
from data_generator.object_detection_2d_geometric_ops import Resize
from data_generator.object_detection_2d_misc_utils import apply_inverse_transforms
from data_generator.object_detection_2d_photometric_ops import ConvertTo3Channels
from keras_layers.keras_layer_AnchorBoxes import AnchorBoxes
from keras_layers.keras_layer_DecodeDetections import DecodeDetections
from keras_layers.keras_layer_DecodeDetectionsFast import DecodeDetectionsFast
from keras_layers.keras_layer_L2Normalization import L2Normalization
from keras_loss_function.keras_ssd_loss import SSDLoss
from models.keras_ssd300 import ssd_300
from ssd_encoder_decoder.ssd_input_encoder import SSDInputEncoder
from ssd_encoder_decoder.ssd_output_decoder import decode_detections, decode_detections_fast

%matplotlib inline
"""),
        md("## 1. Parameters: data, weights, schedule"),
        code("""
# Pascal VOC (edit these paths).
VOC_2007_ROOT = "../datasets/VOCdevkit/VOC2007"
VOC_2012_ROOT = "../datasets/VOCdevkit/VOC2012"
images_dirs = [f"{VOC_2007_ROOT}/JPEGImages", f"{VOC_2012_ROOT}/JPEGImages"]
annotations_dirs = [f"{VOC_2007_ROOT}/Annotations", f"{VOC_2012_ROOT}/Annotations"]
trainval_sets = [f"{VOC_2007_ROOT}/ImageSets/Main/trainval.txt", f"{VOC_2012_ROOT}/ImageSets/Main/trainval.txt"]
test_sets = [f"{VOC_2007_ROOT}/ImageSets/Main/test.txt"]
classes = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
# The reduced VGG-16 of the original (or write one from Keras' VGG-16 with
# models.vgg16_reduced.save_vgg16_fc_reduced).
weights_path = "VGG_ILSVRC_16_layers_fc_reduced.h5"
batch_size = 32
epochs, steps_per_epoch = 120, 1000
"""),
        code(SHAPES_CELL + """
    images_dirs, annotations_dirs = [shapes["images_dir"]], [shapes["annotations_dir"]]
    trainval_sets, test_sets = [shapes["trainval"]], [shapes["test"]]
    classes = shapes["classes"]
    from models.vgg16_reduced import save_vgg16_fc_reduced
    weights_path = save_vgg16_fc_reduced(os.path.join(WORK_DIR, "vgg16_fc_reduced.h5"), keras.applications.VGG16(weights=None))
    batch_size, epochs, steps_per_epoch = 2, 1, 2
"""),
        md("## 2. The model"),
        code("""
img_height, img_width, img_channels = 300, 300, 3
mean_color = [123, 117, 104]   # the means of the ImageNet images the VGG-16 base was trained on
swap_channels = [2, 1, 0]      # the Caffe weights expect BGR
n_classes = len(classes) - 1   # positive classes
scales_pascal = [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
scales_coco = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
scales = scales_pascal
aspect_ratios = [[1.0, 2.0, 0.5],
                 [1.0, 2.0, 0.5, 3.0, 1.0/3.0],
                 [1.0, 2.0, 0.5, 3.0, 1.0/3.0],
                 [1.0, 2.0, 0.5, 3.0, 1.0/3.0],
                 [1.0, 2.0, 0.5],
                 [1.0, 2.0, 0.5]]
two_boxes_for_ar1 = True
steps = [8, 16, 32, 64, 100, 300]
offsets = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
clip_boxes = False
variances = [0.1, 0.1, 0.2, 0.2]
normalize_coords = True

K.clear_session()
model = ssd_300(image_size=(img_height, img_width, img_channels), n_classes=n_classes, mode="training",
                l2_regularization=0.0005, scales=scales, aspect_ratios_per_layer=aspect_ratios,
                two_boxes_for_ar1=two_boxes_for_ar1, steps=steps, offsets=offsets, clip_boxes=clip_boxes,
                variances=variances, normalize_coords=normalize_coords, subtract_mean=mean_color,
                swap_channels=swap_channels)
model.load_weights(weights_path, by_name=True)

sgd = SGD(learning_rate=0.001, momentum=0.9, nesterov=False)   # Keras 3: learning_rate, no decay argument
# adam = Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
model.compile(optimizer=sgd, loss=ssd_loss.compute_loss)
"""),
        md("""
To continue from a saved model instead (Keras 3 `.keras` files; the `custom_objects` of the
original still work but are no longer needed):

```python
model = load_model("ssd300_pascal_07+12_epoch-10.keras",
                   custom_objects={"AnchorBoxes": AnchorBoxes, "L2Normalization": L2Normalization,
                                   "compute_loss": ssd_loss.compute_loss})
```
"""),
        md("## 3. Data: parse, (optionally) convert to HDF5, augment, encode"),
        code("""
train_dataset = DataGenerator(load_images_into_memory=False, hdf5_dataset_path=None)
val_dataset = DataGenerator(load_images_into_memory=False, hdf5_dataset_path=None)
train_dataset.parse_xml(images_dirs=images_dirs, image_set_filenames=trainval_sets, annotations_dirs=annotations_dirs,
                        classes=classes, include_classes="all", exclude_truncated=False, exclude_difficult=False, ret=False)
val_dataset.parse_xml(images_dirs=images_dirs[:1], image_set_filenames=test_sets, annotations_dirs=annotations_dirs[:1],
                      classes=classes, include_classes="all", exclude_truncated=False, exclude_difficult=True, ret=False)
# Optional: one HDF5 file per split makes reading much faster.
train_dataset.create_hdf5_dataset(file_path=os.path.join(WORK_DIR, "dataset_pascal_voc_07+12_trainval.h5"), resize=False,
                                  variable_image_size=True, verbose=True)
print("Training images:", train_dataset.get_dataset_size(), " validation images:", val_dataset.get_dataset_size())
"""),
        code("""
ssd_data_augmentation = SSDDataAugmentation(img_height=img_height, img_width=img_width, background=mean_color)
convert_to_3_channels = ConvertTo3Channels()
resize = Resize(height=img_height, width=img_width)

# Keras 3 layers have no `output_shape`; use `.output.shape` (or return_predictor_sizes=True).
predictor_sizes = [model.get_layer(name).output.shape[1:3] for name in
                   ("conv4_3_norm_mbox_conf", "fc7_mbox_conf", "conv6_2_mbox_conf",
                    "conv7_2_mbox_conf", "conv8_2_mbox_conf", "conv9_2_mbox_conf")]
ssd_input_encoder = SSDInputEncoder(img_height=img_height, img_width=img_width, n_classes=n_classes,
                                    predictor_sizes=predictor_sizes, scales=scales, aspect_ratios_per_layer=aspect_ratios,
                                    two_boxes_for_ar1=two_boxes_for_ar1, steps=steps, offsets=offsets, clip_boxes=clip_boxes,
                                    variances=variances, matching_type="multi", pos_iou_threshold=0.5, neg_iou_limit=0.5,
                                    normalize_coords=normalize_coords)

# keras_dataset() is a keras.utils.PyDataset: `fit` takes it directly and knows its length.
train_data = train_dataset.keras_dataset(batch_size=batch_size, shuffle=True, transformations=[ssd_data_augmentation],
                                         label_encoder=ssd_input_encoder, returns={"processed_images", "encoded_labels"},
                                         keep_images_without_gt=False)
val_data = val_dataset.keras_dataset(batch_size=batch_size, shuffle=False, transformations=[convert_to_3_channels, resize],
                                     label_encoder=ssd_input_encoder, returns={"processed_images", "encoded_labels"},
                                     keep_images_without_gt=False)
"""),
        md("## 4. Train"),
        code("""
def lr_schedule(epoch):
    if epoch < 80:
        return 0.001
    elif epoch < 100:
        return 0.0001
    else:
        return 0.00001

model_checkpoint = ModelCheckpoint(filepath=os.path.join(WORK_DIR, "ssd300_pascal_07+12_epoch-{epoch:02d}_loss-{loss:.4f}_val_loss-{val_loss:.4f}.keras"),
                                   monitor="val_loss", verbose=1, save_best_only=True, save_weights_only=False, mode="auto",
                                   save_freq="epoch")
csv_logger = CSVLogger(filename=os.path.join(WORK_DIR, "ssd300_pascal_07+12_training_log.csv"), separator=",", append=True)
learning_rate_scheduler = LearningRateScheduler(schedule=lr_schedule, verbose=1)
terminate_on_nan = TerminateOnNaN()
callbacks = [model_checkpoint, csv_logger, learning_rate_scheduler, terminate_on_nan]

initial_epoch = 0
history = model.fit(train_data, steps_per_epoch=steps_per_epoch, epochs=epochs, callbacks=callbacks,
                    validation_data=val_data, validation_steps=ceil(val_dataset.get_dataset_size() / batch_size),
                    initial_epoch=initial_epoch)
"""),
        code("""
plt.figure(figsize=(8, 4))
plt.plot(history.history["loss"], label="loss")
plt.plot(history.history["val_loss"], label="val_loss")
plt.xlabel("epoch"); plt.legend(); plt.title("SSD300 training")
plt.show()
"""),
        md("## 5. Predictions on validation images"),
        code(PLOT_DETECTIONS),
        code("""
predict_generator = val_dataset.generate(batch_size=1, shuffle=True, transformations=[convert_to_3_channels, resize],
                                         label_encoder=None,
                                         returns={"processed_images", "filenames", "inverse_transform", "original_images", "original_labels"},
                                         keep_images_without_gt=False)
batch_images, batch_filenames, batch_inverse_transforms, batch_original_images, batch_original_labels = next(predict_generator)
y_pred = model.predict(batch_images)
y_pred_decoded = decode_detections(y_pred, confidence_thresh=0.5, iou_threshold=0.4, top_k=200,
                                   normalize_coords=normalize_coords, img_height=img_height, img_width=img_width)
y_pred_decoded_inv = apply_inverse_transforms(y_pred_decoded, batch_inverse_transforms)
print("Image:", batch_filenames[0])
print("Detections [class, conf, xmin, ymin, xmax, ymax]:")
print(np.round(y_pred_decoded_inv[0], 2))
plt.figure(figsize=(10, 7))
plot_detections(batch_original_images[0], y_pred_decoded_inv[0], classes, batch_original_labels[0])
plt.show()
"""),
    ]


def ssd7_training():
    return [
        md("""
# SSD7 training

The small SSD7 of the original, trained from scratch. The original used the Udacity traffic
data set (5 classes, 300x480 images, CSV labels); its parameters are in the cell below. With
`SSD_KERAS_SMOKE=1` (and by default when the CSV is missing) it trains on the synthetic shapes.
"""),
        code(SMOKE_CELL),
        code("""
import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN
from keras.models import load_model
from keras.optimizers import Adam

from data_generator.data_augmentation_chain_constant_input_size import DataAugmentationConstantInputSize
from data_generator.data_augmentation_chain_original_ssd import SSDDataAugmentation
from data_generator.data_augmentation_chain_variable_input_size import DataAugmentationVariableInputSize
from data_generator.object_detection_2d_data_generator import DataGenerator
from data_generator.object_detection_2d_geometric_ops import Resize
from data_generator.object_detection_2d_misc_utils import apply_inverse_transforms
from keras_layers.keras_layer_AnchorBoxes import AnchorBoxes
from keras_layers.keras_layer_DecodeDetections import DecodeDetections
from keras_layers.keras_layer_DecodeDetectionsFast import DecodeDetectionsFast
from keras_loss_function.keras_ssd_loss import SSDLoss
from models.keras_ssd7 import build_model
from ssd_encoder_decoder.ssd_input_encoder import SSDInputEncoder
from ssd_encoder_decoder.ssd_output_decoder import decode_detections, decode_detections_fast

%matplotlib inline
"""),
        md("## 1. Parameters"),
        code("""
# The Udacity traffic data set of the original (CSV: image_name, xmin, xmax, ymin, ymax, class_id).
images_dir = "../datasets/udacity_driving_datasets/"
train_labels_filename = "../datasets/udacity_driving_datasets/labels_train.csv"
val_labels_filename = "../datasets/udacity_driving_datasets/labels_val.csv"
classes = ["background", "car", "truck", "pedestrian", "bicyclist", "light"]
img_height, img_width, img_channels = 300, 480, 3
batch_size, epochs, steps_per_epoch = 16, 20, 1000
"""),
        code("""
use_shapes = SMOKE or not os.path.isfile(train_labels_filename)
if use_shapes:
    from data_generator.synthetic_shapes import make_shapes_dataset
    n = (16, 8) if SMOKE else (600, 120)
    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=n[0], n_test=n[1], seed=0, verbose=False)
    classes = shapes["classes"]
    img_height, img_width = (64, 64) if SMOKE else (128, 128)
    batch_size, epochs, steps_per_epoch = (4, 1, 2) if SMOKE else (8, 14, None)
"""),
        md("## 2. The model"),
        code("""
intensity_mean = 127.5   # maps pixel values to [-1, 1] together with the next line
intensity_range = 127.5
n_classes = len(classes) - 1
scales = [0.08, 0.16, 0.32, 0.64, 0.96]
aspect_ratios = [0.5, 1.0, 2.0]
two_boxes_for_ar1 = True
steps = None
offsets = None
clip_boxes = False
variances = [1.0, 1.0, 1.0, 1.0]   # the original's choice; [0.1, 0.1, 0.2, 0.2] learns boxes much faster (see the demo)
normalize_coords = True

K.clear_session()
model = build_model(image_size=(img_height, img_width, img_channels), n_classes=n_classes, mode="training",
                    l2_regularization=0.0005, scales=scales, aspect_ratios_global=aspect_ratios,
                    aspect_ratios_per_layer=None, two_boxes_for_ar1=two_boxes_for_ar1, steps=steps, offsets=offsets,
                    clip_boxes=clip_boxes, variances=variances, normalize_coords=normalize_coords,
                    subtract_mean=intensity_mean, divide_by_stddev=intensity_range)
# model.load_weights("./ssd7_weights.h5", by_name=True)   # to start from earlier weights
adam = Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
model.compile(optimizer=adam, loss=ssd_loss.compute_loss)
"""),
        md("## 3. Data"),
        code("""
train_dataset = DataGenerator(load_images_into_memory=True, hdf5_dataset_path=None)
val_dataset = DataGenerator(load_images_into_memory=True, hdf5_dataset_path=None)
if use_shapes:
    train_dataset.parse_xml(images_dirs=[shapes["images_dir"]], image_set_filenames=[shapes["trainval"]],
                            annotations_dirs=[shapes["annotations_dir"]], classes=classes)
    val_dataset.parse_xml(images_dirs=[shapes["images_dir"]], image_set_filenames=[shapes["test"]],
                          annotations_dirs=[shapes["annotations_dir"]], classes=classes, exclude_difficult=True)
    train_dataset.load_images(); val_dataset.load_images()
else:
    input_format = ["image_name", "xmin", "xmax", "ymin", "ymax", "class_id"]
    train_dataset.parse_csv(images_dir=images_dir, labels_filename=train_labels_filename, input_format=input_format,
                            include_classes="all")
    val_dataset.parse_csv(images_dir=images_dir, labels_filename=val_labels_filename, input_format=input_format,
                          include_classes="all")
print("Training images:", train_dataset.get_dataset_size(), " validation images:", val_dataset.get_dataset_size())

resize = Resize(height=img_height, width=img_width)
data_augmentation_chain = DataAugmentationConstantInputSize(random_brightness=(-48, 48, 0.5), random_contrast=(0.5, 1.8, 0.5),
                                                            random_saturation=(0.5, 1.8, 0.5), random_hue=(18, 0.5),
                                                            random_flip=0.5, random_translate=((0.03, 0.5), (0.03, 0.5), 0.5),
                                                            random_scale=(0.5, 2.0, 0.5), n_trials_max=3, clip_boxes=True,
                                                            overlap_criterion="area", bounds_box_filter=(0.3, 1.0),
                                                            bounds_validator=(0.5, 1.0), n_boxes_min=1, background=(0, 0, 0))
predictor_sizes = [model.get_layer(name).output.shape[1:3] for name in ("classes4", "classes5", "classes6", "classes7")]
ssd_input_encoder = SSDInputEncoder(img_height=img_height, img_width=img_width, n_classes=n_classes,
                                    predictor_sizes=predictor_sizes, scales=scales, aspect_ratios_global=aspect_ratios,
                                    two_boxes_for_ar1=two_boxes_for_ar1, steps=steps, offsets=offsets, clip_boxes=clip_boxes,
                                    variances=variances, matching_type="multi", pos_iou_threshold=0.5, neg_iou_limit=0.3,
                                    normalize_coords=normalize_coords)
train_data = train_dataset.keras_dataset(batch_size=batch_size, shuffle=True, transformations=[resize, data_augmentation_chain],
                                         label_encoder=ssd_input_encoder, returns={"processed_images", "encoded_labels"},
                                         keep_images_without_gt=False)
val_data = val_dataset.keras_dataset(batch_size=batch_size, shuffle=False, transformations=[resize],
                                     label_encoder=ssd_input_encoder, returns={"processed_images", "encoded_labels"},
                                     keep_images_without_gt=False)
"""),
        md("## 4. Train"),
        code("""
callbacks = [
    ModelCheckpoint(filepath=os.path.join(WORK_DIR, "ssd7_epoch-{epoch:02d}_loss-{loss:.4f}_val_loss-{val_loss:.4f}.keras"),
                    monitor="val_loss", verbose=1, save_best_only=True, save_weights_only=False, mode="auto"),
    CSVLogger(filename=os.path.join(WORK_DIR, "ssd7_training_log.csv"), separator=",", append=True),
    EarlyStopping(monitor="val_loss", min_delta=0.0, patience=10, verbose=1),
    # Keras 3: `min_delta` replaces `epsilon`.
    ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=8, verbose=1, min_delta=0.001, cooldown=0, min_lr=0.00001),
    TerminateOnNaN(),
]
history = model.fit(train_data, steps_per_epoch=steps_per_epoch, epochs=epochs, callbacks=callbacks,
                    validation_data=val_data, initial_epoch=0)
"""),
        code("""
plt.figure(figsize=(8, 4))
plt.plot(history.history["loss"], label="loss")
plt.plot(history.history["val_loss"], label="val_loss")
plt.xlabel("epoch"); plt.legend(); plt.title("SSD7 training")
plt.show()
"""),
        md("## 5. Predictions"),
        code(PLOT_DETECTIONS),
        code("""
predict_generator = val_dataset.generate(batch_size=1, shuffle=True, transformations=[resize], label_encoder=None,
                                         returns={"processed_images", "processed_labels", "filenames"},
                                         keep_images_without_gt=False)
batch_images, batch_labels, batch_filenames = next(predict_generator)
y_pred = model.predict(batch_images)
y_pred_decoded = decode_detections(y_pred, confidence_thresh=0.5, iou_threshold=0.45, top_k=200,
                                   normalize_coords=normalize_coords, img_height=img_height, img_width=img_width)
print("Image:", batch_filenames[0])
print("Ground truth [class, xmin, ymin, xmax, ymax]:"); print(np.round(batch_labels[0], 1))
print("Detections [class, conf, xmin, ymin, xmax, ymax]:"); print(np.round(y_pred_decoded[0], 2))
plt.figure(figsize=(8, 6))
plot_detections(batch_images[0], y_pred_decoded[0], classes, batch_labels[0])
plt.show()
"""),
    ]


def inference(size):
    name = f"ssd{size}"
    if size == 300:
        builder, config = "ssd_300", """
scales = [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
aspect_ratios = [[1.0, 2.0, 0.5], [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5, 3.0, 1.0/3.0],
                 [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5], [1.0, 2.0, 0.5]]
steps = [8, 16, 32, 64, 100, 300]
offsets = [0.5] * 6"""
        weights = "VGG_VOC0712_SSD_300x300_iter_120000.h5"
    else:
        builder, config = "ssd_512", """
scales = [0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05]
aspect_ratios = [[1.0, 2.0, 0.5], [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5, 3.0, 1.0/3.0],
                 [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5], [1.0, 2.0, 0.5]]
steps = [8, 16, 32, 64, 128, 256, 512]
offsets = [0.5] * 7"""
        weights = "VGG_VOC0712_SSD_512x512_iter_120000.h5"
    return [
        md(f"""
# SSD{size} inference

Load the published Pascal VOC weights of the original (`{weights}`, converted from the Caffe
model) into an SSD{size} built in inference mode, and detect objects in images. With
`SSD_KERAS_SMOKE=1` the weights are random (written in the original's Keras-2 `.h5` layout)
and the images synthetic, so the boxes mean nothing: the run checks the plumbing.
"""),
        code(SMOKE_CELL),
        code(f"""
import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.models import load_model
from keras.optimizers import Adam
from keras.preprocessing import image   # keras.utils.load_img / img_to_array in Keras 3

from data_generator.object_detection_2d_data_generator import DataGenerator
from data_generator.object_detection_2d_geometric_ops import Resize
from data_generator.object_detection_2d_misc_utils import apply_inverse_transforms
from data_generator.object_detection_2d_photometric_ops import ConvertTo3Channels
from keras_layers.keras_layer_AnchorBoxes import AnchorBoxes
from keras_layers.keras_layer_DecodeDetections import DecodeDetections
from keras_layers.keras_layer_DecodeDetectionsFast import DecodeDetectionsFast
from keras_layers.keras_layer_L2Normalization import L2Normalization
from keras_loss_function.keras_ssd_loss import SSDLoss
from models.keras_{name} import {builder}

%matplotlib inline
"""),
        md("## 1. Parameters"),
        code(f"""
weights_path = "{weights}"
image_paths = ["examples/fish_bike.jpg"]
VOC_2007_ROOT = "../datasets/VOCdevkit/VOC2007"
classes = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
img_height = img_width = {size}
"""),
        code(SHAPES_CELL + f"""
    image_paths = [os.path.join(shapes["images_dir"], "000017.jpg"), os.path.join(shapes["images_dir"], "000018.jpg")]
    # Random weights in the original's Keras-2 .h5 layout, from a model of the same architecture.
    from models.legacy_weights import read_legacy_h5  # noqa: F401  (the reader load_weights uses)
    from models.vgg16_reduced import write_legacy_h5
    random_model = {builder}(image_size=(img_height, img_width, 3), n_classes=20, mode="training", scales=[0.1] * {8 if size == 512 else 7})
    weights_path = os.path.join(WORK_DIR, "random_weights.h5")
    write_legacy_h5(weights_path, {{layer.name: [w.numpy() for w in layer.weights] for layer in random_model.layers if layer.weights}})
    del random_model
"""),
        md("## 2. Build the model and load the weights"),
        code(f"""{config}

K.clear_session()
model = {builder}(image_size=(img_height, img_width, 3), n_classes=20, mode="inference", l2_regularization=0.0005,
                scales=scales, aspect_ratios_per_layer=aspect_ratios, two_boxes_for_ar1=True, steps=steps, offsets=offsets,
                clip_boxes=False, variances=[0.1, 0.1, 0.2, 0.2], normalize_coords=True, subtract_mean=[123, 117, 104],
                swap_channels=[2, 1, 0], confidence_thresh=0.5, iou_threshold=0.45, top_k=200, nms_max_output_size=400)
model.load_weights(weights_path, by_name=True)
# Compiling is no longer needed for prediction; the original compiled "so Keras won't complain":
adam = Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
model.compile(optimizer=adam, loss=ssd_loss.compute_loss)
"""),
        md("""
Or load a whole saved model (`.keras`); the original's `custom_objects` still work:

```python
model = load_model("ssd_model.keras", custom_objects={"AnchorBoxes": AnchorBoxes, "L2Normalization": L2Normalization,
                                                      "DecodeDetections": DecodeDetections, "compute_loss": ssd_loss.compute_loss})
```
"""),
        md("## 3. Detect objects in images"),
        code("""
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
print("Predicted boxes:\\n")
print("   class   conf xmin   ymin   xmax   ymax")
print(y_pred_thresh[0])
"""),
        code(PLOT_DETECTIONS),
        code("""
# Boxes are in the model's frame; scale them to the original image.
fig, axes = plt.subplots(1, len(orig_images), figsize=(8 * len(orig_images), 6), squeeze=False)
for ax, orig, boxes in zip(axes[0], orig_images, y_pred_thresh):
    boxes = boxes.copy()
    boxes[:, [2, 4]] *= orig.shape[1] / img_width
    boxes[:, [3, 5]] *= orig.shape[0] / img_height
    plot_detections(orig, boxes, classes, ax=ax)
plt.show()
"""),
        md("## 4. Detections on Pascal VOC 2007 test images (with the original images' coordinates)"),
        code("""
if SMOKE:
    images_dir, annotations_dir, image_set = shapes["images_dir"], shapes["annotations_dir"], shapes["test"]
    voc_classes = shapes["classes"]
else:
    images_dir, annotations_dir = f"{VOC_2007_ROOT}/JPEGImages", f"{VOC_2007_ROOT}/Annotations"
    image_set, voc_classes = f"{VOC_2007_ROOT}/ImageSets/Main/test.txt", classes
dataset = DataGenerator()
dataset.parse_xml(images_dirs=[images_dir], image_set_filenames=[image_set], annotations_dirs=[annotations_dir],
                  classes=voc_classes, include_classes="all", exclude_truncated=False, exclude_difficult=True, ret=False)
generator = dataset.generate(batch_size=1, shuffle=True, transformations=[ConvertTo3Channels(), Resize(img_height, img_width)],
                             label_encoder=None,
                             returns={"processed_images", "filenames", "inverse_transform", "original_images", "original_labels"},
                             keep_images_without_gt=False)
batch_images, batch_filenames, batch_inverse_transforms, batch_original_images, batch_original_labels = next(generator)
y_pred = model.predict(batch_images)
y_pred_thresh = [y_pred[k][y_pred[k, :, 1] > confidence_threshold] for k in range(y_pred.shape[0])]
y_pred_thresh_inv = apply_inverse_transforms(y_pred_thresh, batch_inverse_transforms)
print("Image:", batch_filenames[0])
print(y_pred_thresh_inv[0])
plt.figure(figsize=(10, 7))
plot_detections(batch_original_images[0], y_pred_thresh_inv[0], classes, batch_original_labels[0])
plt.show()
"""),
    ]


def ssd300_evaluation():
    return [
        md("""
# SSD300 evaluation on Pascal VOC 2007 test

Computes the mean average precision with the devkit's rules (`Evaluator`). The original
recorded mAP 0.776 (11-point, 'sample') and 0.802 ('integrate') for the ported
`VGG_VOC0712_SSD_300x300_ft_iter_120000.h5`. With `SSD_KERAS_SMOKE=1`: random weights,
synthetic images, a mAP near zero.
"""),
        code(SMOKE_CELL),
        code("""
import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.models import load_model
from keras.optimizers import Adam

from data_generator.object_detection_2d_data_generator import DataGenerator
from eval_utils.average_precision_evaluator import Evaluator
from keras_layers.keras_layer_AnchorBoxes import AnchorBoxes
from keras_layers.keras_layer_DecodeDetections import DecodeDetections
from keras_layers.keras_layer_DecodeDetectionsFast import DecodeDetectionsFast
from keras_layers.keras_layer_L2Normalization import L2Normalization
from keras_loss_function.keras_ssd_loss import SSDLoss
from models.keras_ssd300 import ssd_300

%matplotlib inline
"""),
        md("## 1. Parameters"),
        code("""
img_height, img_width = 300, 300
n_classes = 20
model_mode = "inference"
weights_path = "VGG_VOC0712_SSD_300x300_ft_iter_120000.h5"
VOC_2007_ROOT = "../datasets/VOCdevkit/VOC2007"
images_dir, annotations_dir = f"{VOC_2007_ROOT}/JPEGImages", f"{VOC_2007_ROOT}/Annotations"
image_set_filename = f"{VOC_2007_ROOT}/ImageSets/Main/test.txt"
classes = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
"""),
        code(SHAPES_CELL + """
    images_dir, annotations_dir, image_set_filename = shapes["images_dir"], shapes["annotations_dir"], shapes["test"]
    classes = shapes["classes"]
    n_classes = len(classes) - 1
    weights_path = None   # random weights
"""),
        md("## 2. The model"),
        code("""
K.clear_session()
model = ssd_300(image_size=(img_height, img_width, 3), n_classes=n_classes, mode=model_mode, l2_regularization=0.0005,
                scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05],
                aspect_ratios_per_layer=[[1.0, 2.0, 0.5], [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5, 3.0, 1.0/3.0],
                                         [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5], [1.0, 2.0, 0.5]],
                two_boxes_for_ar1=True, steps=[8, 16, 32, 64, 100, 300], offsets=[0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
                clip_boxes=False, variances=[0.1, 0.1, 0.2, 0.2], normalize_coords=True, subtract_mean=[123, 117, 104],
                swap_channels=[2, 1, 0], confidence_thresh=0.01, iou_threshold=0.45, top_k=200, nms_max_output_size=400)
if weights_path is not None:
    model.load_weights(weights_path, by_name=True)
model.compile(optimizer=Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08),
              loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss)
"""),
        md("## 3. The data: difficult boxes are kept and count as neutral, as in the devkit"),
        code("""
dataset = DataGenerator()
dataset.parse_xml(images_dirs=[images_dir], image_set_filenames=[image_set_filename], annotations_dirs=[annotations_dir],
                  classes=classes, include_classes="all", exclude_truncated=False, exclude_difficult=False, ret=False)
"""),
        md("## 4. Evaluate"),
        code("""
evaluator = Evaluator(model=model, n_classes=n_classes, data_generator=dataset, model_mode=model_mode)
results = evaluator(img_height=img_height, img_width=img_width, batch_size=8, data_generator_mode="resize",
                    round_confidences=False, matching_iou_threshold=0.5, border_pixels="include", sorting_algorithm="quicksort",
                    average_precision_mode="sample", num_recall_points=11, ignore_neutral_boxes=True,
                    return_precisions=True, return_recalls=True, return_average_precisions=True, verbose=True)
mean_average_precision, average_precisions, precisions, recalls = results
for i in range(1, len(average_precisions)):
    print("{:<14}{:<6}{}".format(classes[i], "AP", round(average_precisions[i], 3)))
print()
print("{:<14}{:<6}{}".format("", "mAP", round(mean_average_precision, 3)))
"""),
        code("""
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
        cells[i, j].set_title("{}, AP: {:.3f}".format(classes[n * i + j + 1], average_precisions[n * i + j + 1]), fontsize=16)
plt.show()
"""),
        md("## 5. Advanced use: the steps one by one"),
        code("""
evaluator.get_num_gt_per_class(ignore_neutral_boxes=True, verbose=False, ret=False)
evaluator.match_predictions(ignore_neutral_boxes=True, matching_iou_threshold=0.5, border_pixels="include",
                            sorting_algorithm="quicksort", verbose=True, ret=False)
precisions, recalls = evaluator.compute_precision_recall(verbose=True, ret=True)
average_precisions = evaluator.compute_average_precisions(mode="integrate", num_recall_points=11, verbose=True, ret=True)
mean_average_precision = evaluator.compute_mean_average_precision(ret=True)
print("mAP ('integrate'):", round(mean_average_precision, 3))
"""),
    ]


def ssd300_evaluation_coco():
    return [
        md("""
# SSD300 evaluation on MS COCO

Writes the model's detections on COCO val2017 in the COCO results format
(`predict_all_to_json`) and runs pycocotools' `COCOeval`. The original recorded AP 0.247 and
AP50 0.424 for `VGG_coco_SSD_300x300_iter_400000.h5`. With `SSD_KERAS_SMOKE=1`: random
weights on a small COCO-format file made from the synthetic shapes.
"""),
        code(SMOKE_CELL),
        code("""
import json

import keras
import numpy as np
from keras import backend as K
from keras.optimizers import Adam
from pycocotools.coco import COCO          # pip install pycocotools (no more sys.path for cocoapi)
from pycocotools.cocoeval import COCOeval

from data_generator.object_detection_2d_data_generator import DataGenerator
from eval_utils.coco_utils import get_coco_category_maps, predict_all_to_json
from keras_loss_function.keras_ssd_loss import SSDLoss
from models.keras_ssd300 import ssd_300
"""),
        md("## 1. Parameters"),
        code("""
dataset_root = "../datasets/MicrosoftCOCO"
images_dir = f"{dataset_root}/val2017/"
annotations_filename = f"{dataset_root}/annotations/instances_val2017.json"
results_file = "detections_val2017_ssd300_results.json"
weights_path = "VGG_coco_SSD_300x300_iter_400000.h5"
img_height, img_width = 300, 300
n_classes = 80
"""),
        code(SHAPES_CELL + """
    from xml.etree import ElementTree
    # The shapes' test split as a COCO annotation file.
    names = shapes["classes"][1:]
    coco = {"images": [], "annotations": [], "categories": [{"id": 10 + i, "name": n} for i, n in enumerate(names)]}
    with open(shapes["test"]) as f:
        ids = [line.strip() for line in f if line.strip()]
    for image_id in ids:
        root = ElementTree.parse(os.path.join(shapes["annotations_dir"], image_id + ".xml")).getroot()
        coco["images"].append({"id": int(image_id), "file_name": image_id + ".jpg",
                               "width": int(root.find("size/width").text), "height": int(root.find("size/height").text)})
        for obj in root.iter("object"):
            x1, y1, x2, y2 = (float(obj.find("bndbox/" + k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": int(image_id), "iscrowd": 0,
                                        "category_id": 10 + names.index(obj.find("name").text),
                                        "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    images_dir = shapes["images_dir"]
    annotations_filename = os.path.join(WORK_DIR, "instances_shapes.json")
    with open(annotations_filename, "w") as f:
        json.dump(coco, f)
    results_file = os.path.join(WORK_DIR, "detections_shapes.json")
    weights_path, n_classes = None, len(names)
"""),
        md("## 2. The model"),
        code("""
K.clear_session()
model = ssd_300(image_size=(img_height, img_width, 3), n_classes=n_classes, mode="inference", l2_regularization=0.0005,
                scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
                aspect_ratios_per_layer=[[1.0, 2.0, 0.5], [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5, 3.0, 1.0/3.0],
                                         [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5], [1.0, 2.0, 0.5]],
                two_boxes_for_ar1=True, steps=[8, 16, 32, 64, 100, 300], offsets=[0.5] * 6, clip_boxes=False,
                variances=[0.1, 0.1, 0.2, 0.2], normalize_coords=True, subtract_mean=[123, 117, 104], swap_channels=[2, 1, 0],
                confidence_thresh=0.01, iou_threshold=0.45, top_k=200, nms_max_output_size=400)
if weights_path is not None:
    model.load_weights(weights_path, by_name=True)
model.compile(optimizer=Adam(learning_rate=0.001), loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss)
"""),
        md("## 3. Predict on the whole data set and write the results file"),
        code("""
dataset = DataGenerator()
dataset.parse_json(images_dirs=[images_dir], annotations_filenames=[annotations_filename], ground_truth_available=False,
                   include_classes="all", ret=False)
cats_to_classes, classes_to_cats, cats_to_names, classes_to_names = get_coco_category_maps(annotations_filename)
results = predict_all_to_json(out_file=results_file, model=model, img_height=img_height, img_width=img_width,
                              classes_to_cats=classes_to_cats, data_generator=dataset, batch_size=20,
                              data_generator_mode="resize", model_mode="inference", confidence_thresh=0.01,
                              iou_threshold=0.45, top_k=200, normalize_coords=True)
print(len(results), "detections written to", results_file)
"""),
        md("## 4. COCOeval"),
        code("""
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
"""),
    ]


def weight_sampling_tutorial():
    return [
        md("""
# Weight sub-sampling: an SSD300 for your own classes from the COCO-trained weights

The trained SSD300 classifies 80 COCO classes (81 with background). To fine-tune it on a data
set with, say, 8 classes, keep only those classes' channels in the six classifier layers
(`*_mbox_conf`) and load the result into an SSD300 with `n_classes=8`: the localisation layers
and the base network keep everything they learnt. With `SSD_KERAS_SMOKE=1` the source
weights are random (written in the original's `.h5` layout).
"""),
        code(SMOKE_CELL),
        code("""
import shutil

import h5py
import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import backend as K
from keras.optimizers import Adam

from data_generator.object_detection_2d_data_generator import DataGenerator
from data_generator.object_detection_2d_geometric_ops import Resize
from data_generator.object_detection_2d_patch_sampling_ops import RandomMaxCropFixedAR
from data_generator.object_detection_2d_photometric_ops import ConvertTo3Channels
from keras_loss_function.keras_ssd_loss import SSDLoss
from misc_utils.tensor_sampling_utils import sample_tensors
from models.keras_ssd300 import ssd_300

%matplotlib inline
"""),
        md("## 1. The source weights"),
        code("""
weights_source_path = "VGG_coco_SSD_300x300_iter_400000.h5"
weights_destination_path = "VGG_coco_SSD_300x300_iter_400000_subsampled_8_classes.h5"
coco_scales = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
aspect_ratios = [[1.0, 2.0, 0.5], [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5, 3.0, 1.0/3.0],
                 [1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0, 0.5], [1.0, 2.0, 0.5]]
"""),
        code("""
if SMOKE:
    from models.vgg16_reduced import write_legacy_h5
    coco_model = ssd_300(image_size=(300, 300, 3), n_classes=80, mode="training", scales=coco_scales)
    weights_source_path = os.path.join(WORK_DIR, "coco_random.h5")
    weights_destination_path = os.path.join(WORK_DIR, "subsampled_8_classes.h5")
    write_legacy_h5(weights_source_path, {layer.name: [w.numpy() for w in layer.weights] for layer in coco_model.layers if layer.weights})
    del coco_model
shutil.copy(weights_source_path, weights_destination_path)
weights_source_file = h5py.File(weights_source_path, "r")
weights_destination_file = h5py.File(weights_destination_path, "r+")
"""),
        md("## 2. Choose the classes and sub-sample the classifier layers"),
        code("""
classifier_names = ["conv4_3_norm_mbox_conf", "fc7_mbox_conf", "conv6_2_mbox_conf",
                    "conv7_2_mbox_conf", "conv8_2_mbox_conf", "conv9_2_mbox_conf"]
conv4_3_norm_mbox_conf_kernel = weights_source_file[classifier_names[0]][classifier_names[0]]["kernel:0"]
print("Shape of the conv4_3_norm_mbox_conf kernel:", conv4_3_norm_mbox_conf_kernel.shape)   # (3, 3, 512, 4 * 81)

n_classes_source = 81
classes_of_interest = [0, 3, 8, 1, 2, 10, 4, 6, 12]   # background, then 8 COCO classes in the order we want
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
    new_kernel, new_bias = sample_tensors(weights_list=[kernel, bias],
                                          sampling_instructions=[height, width, in_channels, subsampling_indices],
                                          axes=[[3]], init=["gaussian", "zeros"], mean=0.0, stddev=0.005)
    del weights_destination_file[name][name]["kernel:0"]
    del weights_destination_file[name][name]["bias:0"]
    weights_destination_file[name][name].create_dataset(name="kernel:0", data=new_kernel)
    weights_destination_file[name][name].create_dataset(name="bias:0", data=new_bias)

print("Shape of the new conv4_3_norm_mbox_conf kernel:", weights_destination_file[classifier_names[0]][classifier_names[0]]["kernel:0"].shape)
weights_source_file.close()
weights_destination_file.close()
"""),
        md("""
(`misc_utils.tensor_sampling_utils.subsample_classifier_weights(source, destination, classes_of_interest)`
does the loop above in one call, and `ssd-keras sample-weights` from the shell.)

## 3. Load the sub-sampled weights into an 8-class SSD300
"""),
        code("""
n_classes = 8
K.clear_session()
model = ssd_300(image_size=(300, 300, 3), n_classes=n_classes, mode="inference", l2_regularization=0.0005,
                scales=coco_scales, aspect_ratios_per_layer=aspect_ratios, two_boxes_for_ar1=True,
                steps=[8, 16, 32, 64, 100, 300], offsets=[0.5] * 6, clip_boxes=False, variances=[0.1, 0.1, 0.2, 0.2],
                normalize_coords=True, subtract_mean=[123, 117, 104], swap_channels=[2, 1, 0],
                confidence_thresh=0.5, iou_threshold=0.45, top_k=200, nms_max_output_size=400)
model.load_weights(weights_destination_path, by_name=True)
model.compile(optimizer=Adam(learning_rate=0.001), loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss)
print("conv4_3_norm_mbox_conf kernel in the model:", model.get_layer("conv4_3_norm_mbox_conf").get_weights()[0].shape)
"""),
        md("## 4. Try it on a few images (random crops with the model's aspect ratio)"),
        code("""
images_dir = "../datasets/udacity_driving_datasets/"
labels_filename = "../datasets/udacity_driving_datasets/labels_val.csv"
if SMOKE or not os.path.isfile(labels_filename):
    from data_generator.synthetic_shapes import make_shapes_dataset
    shapes = make_shapes_dataset(os.path.join(WORK_DIR, "shapes"), n_trainval=4, n_test=0, seed=0, verbose=False)
    images_dir = shapes["images_dir"]
    labels_filename = os.path.join(WORK_DIR, "labels.csv")
    with open(labels_filename, "w") as f:
        f.write("frame,xmin,xmax,ymin,ymax,class_id\\n")
        for name in sorted(os.listdir(images_dir)):
            f.write(f"{name},10,60,10,60,1\\n")
dataset = DataGenerator()
dataset.parse_csv(images_dir=images_dir, labels_filename=labels_filename,
                  input_format=["image_name", "xmin", "xmax", "ymin", "ymax", "class_id"], include_classes="all",
                  random_sample=False)
generator = dataset.generate(batch_size=1, shuffle=True,
                             transformations=[ConvertTo3Channels(), RandomMaxCropFixedAR(patch_aspect_ratio=1.0), Resize(300, 300)],
                             label_encoder=None, returns={"processed_images", "processed_labels", "filenames"},
                             keep_images_without_gt=False)
batch_images, batch_labels, batch_filenames = next(generator)
y_pred = model.predict(batch_images)
y_pred_thresh = [y_pred[k][y_pred[k, :, 1] > 0.5] for k in range(y_pred.shape[0])]
print("Image:", batch_filenames[0]); print(np.round(y_pred_thresh[0], 2))
plt.figure(figsize=(6, 6)); plt.imshow(batch_images[0]); plt.axis("off"); plt.show()
"""),
    ]


NOTEBOOKS = {
    "ssd300_training.ipynb": ssd300_training,
    "ssd7_training.ipynb": ssd7_training,
    "ssd300_inference.ipynb": lambda: inference(300),
    "ssd512_inference.ipynb": lambda: inference(512),
    "ssd300_evaluation.ipynb": ssd300_evaluation,
    "ssd300_evaluation_COCO.ipynb": ssd300_evaluation_coco,
    "weight_sampling_tutorial.ipynb": weight_sampling_tutorial,
}


def main():
    for name, cells in NOTEBOOKS.items():
        notebook = nbformat.v4.new_notebook(cells=cells())
        notebook.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                                 language_info={"name": "python"})
        nbformat.validate(notebook)
        with open(os.path.join(ROOT, name), "w", encoding="utf-8") as f:
            nbformat.write(notebook, f)
        print("wrote", name)


if __name__ == "__main__":
    main()

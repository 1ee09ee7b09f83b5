"""The module paths of the original ssd_keras, as thin aliases of this package's modules.

The original was used from a clone with its root on ``sys.path``
(``from models.keras_ssd300 import ssd_300``). A clone of this repository still holds
those paths at its root: each is a module that re-exports names from `ssd_keras`
(`ORIGINAL_MODULES` lists them, and a test checks that the files at the root agree). An
installed `ssd_keras` puts none of those generic names (``models``, ``data_generator``,
...) into site-packages, where they would clash with other projects' packages;
`use_original_paths` makes them importable there on request.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys

# original module -> (module of this package, the names it re-exports)
ORIGINAL_MODULES = {
    "bounding_box_utils.bounding_box_utils": (
        "ssd_keras.boxes.geometry",
        (
            "convert_coordinates",
            "convert_coordinates2",
            "intersection_area",
            "intersection_area_",
            "iou",
            "iou_corners",
            "intersection_corners",
            "to_corners",
            "border_offset",
            "check_one_of",
            "BORDER_PIXELS",
            "COORDS",
            "IOU_MODES",
            "CONVERSIONS",
        ),
    ),
    "ssd_encoder_decoder.ssd_input_encoder": (
        "ssd_keras.encoding.input_encoder",
        ("SSDInputEncoder", "DegenerateBoxError", "MATCHING_TYPES"),
    ),
    "ssd_encoder_decoder.ssd_output_decoder": (
        "ssd_keras.encoding.output_decoder",
        (
            "decode_detections",
            "decode_detections_fast",
            "decode_detections_debug",
            "greedy_nms",
            "get_num_boxes_per_pred_layer",
            "get_pred_layers",
            "decode_box_predictions",
            "positive_classes",
        ),
    ),
    "ssd_encoder_decoder.matching_utils": (
        "ssd_keras.boxes.matching",
        ("match_bipartite_greedy", "match_multi", "match_bipartite_greedy_batch", "greedy_bipartite_from_best"),
    ),
    "keras_layers.keras_layer_AnchorBoxes": ("ssd_keras.layers.anchor_boxes", ("AnchorBoxes",)),
    "keras_layers.keras_layer_L2Normalization": ("ssd_keras.layers.l2_normalization", ("L2Normalization",)),
    "keras_layers.keras_layer_DecodeDetections": ("ssd_keras.layers.decode_detections", ("DecodeDetections",)),
    "keras_layers.keras_layer_DecodeDetectionsFast": (
        "ssd_keras.layers.decode_detections_fast",
        ("DecodeDetectionsFast",),
    ),
    "keras_loss_function.keras_ssd_loss": ("ssd_keras.losses.ssd_loss", ("SSDLoss", "SSDLossFunction")),
    "models.keras_ssd300": ("ssd_keras.models.ssd300", ("ssd_300", "SSD300", "SSD300_EXTRA_LAYERS", "SSD300_SOURCES")),
    "models.keras_ssd512": ("ssd_keras.models.ssd512", ("ssd_512", "SSD512", "SSD512_EXTRA_LAYERS", "SSD512_SOURCES")),
    "models.keras_ssd7": (
        "ssd_keras.models.ssd7",
        ("build_model", "SSD7_LAYERS", "SSD7_SOURCE_LAYERS", "SSD7_MIN_SIZE"),
    ),
    "data_generator.object_detection_2d_data_generator": (
        "ssd_keras.data.generator",
        (
            "DataGenerator",
            "DatasetError",
            "DegenerateBatchError",
            "DegenerateBoxError",
            "VOC_CLASSES",
            "RETURN_ORDER",
            "DEGENERATE_BOX_HANDLING",
            "degenerate_boxes",
            "load_image",
        ),
    ),
    "data_generator.object_detection_2d_geometric_ops": (
        "ssd_keras.data.transforms.geometric",
        (
            "Resize",
            "ResizeRandomInterp",
            "Flip",
            "RandomFlip",
            "Translate",
            "RandomTranslate",
            "Scale",
            "RandomScale",
            "Rotate",
            "RandomRotate",
            "INTERPOLATION_MODES",
        ),
    ),
    "data_generator.object_detection_2d_photometric_ops": (
        "ssd_keras.data.transforms.photometric",
        (
            "ConvertColor",
            "ConvertDataType",
            "ConvertTo3Channels",
            "Hue",
            "RandomHue",
            "Saturation",
            "RandomSaturation",
            "Brightness",
            "RandomBrightness",
            "Contrast",
            "RandomContrast",
            "Gamma",
            "RandomGamma",
            "HistogramEqualization",
            "RandomHistogramEqualization",
            "ChannelSwap",
            "RandomChannelSwap",
            "PhotometricDistortions",
        ),
    ),
    "data_generator.object_detection_2d_patch_sampling_ops": (
        "ssd_keras.data.transforms.patch_sampling",
        (
            "PatchCoordinateGenerator",
            "CropPad",
            "Crop",
            "Pad",
            "RandomPatch",
            "RandomPatchInf",
            "RandomMaxCropFixedAR",
            "RandomPadFixedAR",
            "compose_crop_pads",
            "MUST_MATCH",
        ),
    ),
    "data_generator.object_detection_2d_image_boxes_validation_utils": (
        "ssd_keras.data.transforms.validation",
        ("BoundGenerator", "BoxFilter", "ImageValidator", "overlap_mask", "OVERLAP_CRITERIA"),
    ),
    "data_generator.object_detection_2d_misc_utils": (
        "ssd_keras.data.transforms.inverse",
        ("apply_inverse_transforms",),
    ),
    "data_generator.data_augmentation_chain_original_ssd": (
        "ssd_keras.data.augmentation.original_ssd",
        ("SSDDataAugmentation", "SSDRandomCrop", "SSDExpand", "SSDPhotometricDistortions"),
    ),
    "data_generator.data_augmentation_chain_constant_input_size": (
        "ssd_keras.data.augmentation.constant_input_size",
        ("DataAugmentationConstantInputSize",),
    ),
    "data_generator.data_augmentation_chain_variable_input_size": (
        "ssd_keras.data.augmentation.variable_input_size",
        ("DataAugmentationVariableInputSize",),
    ),
    "data_generator.data_augmentation_chain_satellite": (
        "ssd_keras.data.augmentation.satellite",
        ("DataAugmentationSatellite",),
    ),
    "eval_utils.average_precision_evaluator": (
        "ssd_keras.evaluation.voc",
        (
            "Evaluator",
            "match_class_detections",
            "precision_recall",
            "average_precision",
            "iterate_predictions",
            "AP_MODES",
            "MODEL_MODES",
            "DATA_GENERATOR_MODES",
        ),
    ),
    "eval_utils.coco_utils": (
        "ssd_keras.evaluation.coco",
        ("get_coco_category_maps", "predict_all_to_json", "evaluate_coco", "COCO_METRIC_NAMES"),
    ),
    "misc_utils.tensor_sampling_utils": (
        "ssd_keras.models.weight_sampling",
        ("sample_tensors", "subsample_classifier_weights", "class_channel_indices", "SSD300_CLASSIFIER_LAYERS"),
    ),
}

# original package -> what importing it imports (the layer packages register the custom objects)
ORIGINAL_PACKAGES = {
    "bounding_box_utils": None,
    "ssd_encoder_decoder": None,
    "keras_layers": "ssd_keras.layers",
    "keras_loss_function": "ssd_keras.layers",
    "models": "ssd_keras.layers",
    "data_generator": None,
    "eval_utils": None,
    "misc_utils": None,
}


class _OriginalPathLoader(importlib.abc.Loader):
    """Makes an original package (empty, or registering the layers as the original's did)
    or module (the names of its `ssd_keras` twin) when it is imported."""

    def create_module(self, spec):
        return None  # a plain new module

    def exec_module(self, module):
        name = module.__name__
        if name in ORIGINAL_PACKAGES:
            module.__path__ = []
            if ORIGINAL_PACKAGES[name]:
                importlib.import_module(ORIGINAL_PACKAGES[name])
            return
        target, names = ORIGINAL_MODULES[name]
        source = importlib.import_module(target)
        module.__doc__ = f"The original's `{name}`: re-exports of `{target}`."
        for attribute in names:
            setattr(module, attribute, getattr(source, attribute))


class _OriginalPathFinder(importlib.abc.MetaPathFinder):
    """Finds the original's modules, after every other finder has been asked: a package of
    the same name on ``sys.path`` (a clone's root, or another project's ``models``) wins."""

    loader = _OriginalPathLoader()

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ORIGINAL_PACKAGES:
            return importlib.machinery.ModuleSpec(fullname, self.loader, is_package=True)
        if fullname in ORIGINAL_MODULES:
            return importlib.machinery.ModuleSpec(fullname, self.loader)
        return None


def use_original_paths():
    """Makes the original ssd_keras module paths importable from the installed package.

    After ``ssd_keras.use_original_paths()``, code written for the original runs
    unchanged outside a clone of the repository::

        import ssd_keras
        ssd_keras.use_original_paths()
        from models.keras_ssd300 import ssd_300
        from data_generator.object_detection_2d_data_generator import DataGenerator

    The finder is asked last: where a package of the same name is importable (a clone's
    root on ``sys.path``, or a ``models`` package of another project), that one is used,
    and the original's modules it lacks still come from here. Calling it again does nothing.

    Returns:
        None.
    """
    if not any(isinstance(finder, _OriginalPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(_OriginalPathFinder())

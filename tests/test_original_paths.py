"""The original ssd_keras's module paths and public names, from a clone (the repository's
root on ``sys.path``, as the original was used) and through `use_original_paths`."""

import ast
import glob
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from ssd_keras._original_paths import ORIGINAL_MODULES, ORIGINAL_PACKAGES

# Every public name of the original, by module (the original's code, as the specification
# lists it); each must import from its original path.
ORIGINAL_NAMES = {
    "bounding_box_utils.bounding_box_utils": [
        "convert_coordinates",
        "convert_coordinates2",
        "intersection_area",
        "intersection_area_",
        "iou",
    ],
    "ssd_encoder_decoder.ssd_input_encoder": ["SSDInputEncoder", "DegenerateBoxError"],
    "ssd_encoder_decoder.ssd_output_decoder": [
        "greedy_nms",
        "decode_detections",
        "decode_detections_fast",
        "decode_detections_debug",
        "get_num_boxes_per_pred_layer",
        "get_pred_layers",
    ],
    "ssd_encoder_decoder.matching_utils": ["match_bipartite_greedy", "match_multi"],
    "keras_layers.keras_layer_AnchorBoxes": ["AnchorBoxes"],
    "keras_layers.keras_layer_L2Normalization": ["L2Normalization"],
    "keras_layers.keras_layer_DecodeDetections": ["DecodeDetections"],
    "keras_layers.keras_layer_DecodeDetectionsFast": ["DecodeDetectionsFast"],
    "keras_loss_function.keras_ssd_loss": ["SSDLoss"],
    "models.keras_ssd300": ["ssd_300"],
    "models.keras_ssd512": ["ssd_512"],
    "models.keras_ssd7": ["build_model"],
    "data_generator.object_detection_2d_data_generator": ["DataGenerator", "DegenerateBatchError", "DatasetError"],
    "data_generator.object_detection_2d_geometric_ops": [
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
    ],
    "data_generator.object_detection_2d_photometric_ops": [
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
    ],
    "data_generator.object_detection_2d_patch_sampling_ops": [
        "PatchCoordinateGenerator",
        "CropPad",
        "Crop",
        "Pad",
        "RandomPatch",
        "RandomPatchInf",
        "RandomMaxCropFixedAR",
        "RandomPadFixedAR",
    ],
    "data_generator.object_detection_2d_image_boxes_validation_utils": [
        "BoundGenerator",
        "BoxFilter",
        "ImageValidator",
    ],
    "data_generator.object_detection_2d_misc_utils": ["apply_inverse_transforms"],
    "data_generator.data_augmentation_chain_original_ssd": [
        "SSDRandomCrop",
        "SSDExpand",
        "SSDPhotometricDistortions",
        "SSDDataAugmentation",
    ],
    "data_generator.data_augmentation_chain_constant_input_size": ["DataAugmentationConstantInputSize"],
    "data_generator.data_augmentation_chain_variable_input_size": ["DataAugmentationVariableInputSize"],
    "data_generator.data_augmentation_chain_satellite": ["DataAugmentationSatellite"],
    "eval_utils.average_precision_evaluator": ["Evaluator"],
    "eval_utils.coco_utils": ["get_coco_category_maps", "predict_all_to_json"],
    "misc_utils.tensor_sampling_utils": ["sample_tensors"],
}


def _import_all(names, cwd, prelude="", env=None):
    """Imports every (module, name) in a new Python process started in `cwd`; returns the
    `CompletedProcess`. Each name must be the object of the same name in `ssd_keras`."""
    lines = [prelude, "import importlib"]
    for module, attributes in names.items():
        target = ORIGINAL_MODULES[module][0]
        for name in attributes:
            lines.append(f"from {module} import {name}")
            lines.append(
                f"assert {name} is getattr(importlib.import_module({target!r}), {name!r}), {module + '.' + name!r}"
            )
    lines.append("print('ok')")
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "\n".join(lines)], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


def test_every_public_name_of_the_original_imports_from_its_path_in_a_clone():
    assert set(ORIGINAL_NAMES) == set(ORIGINAL_MODULES)
    result = _import_all(ORIGINAL_NAMES, ROOT, "import sys; sys.path.insert(0, '.')")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_use_original_paths_brings_them_back_outside_a_clone(tmp_path):
    # Without the call they are not there; with it, every name of the original is.
    result = subprocess.run(
        [sys.executable, "-c", "import models"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode != 0 and "No module named 'models'" in result.stderr
    result = _import_all(
        ORIGINAL_NAMES, tmp_path, "import ssd_keras; ssd_keras.use_original_paths(); ssd_keras.use_original_paths()"
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_a_package_of_the_same_name_wins_and_keeps_its_own_modules(tmp_path):
    # Another project's `models` package: its modules stay its own, the original's come from here.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("OWN = True\n")
    (tmp_path / "models" / "resnet.py").write_text("NAME = 'resnet'\n")
    code = (
        "import sys; sys.path.insert(0, '.'); import ssd_keras; ssd_keras.use_original_paths()\n"
        "import models, models.resnet\nfrom models.keras_ssd7 import build_model\n"
        "print(models.OWN, models.resnet.NAME, build_model.__module__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "resnet", "ssd_keras.models.ssd7"]


def _shim_names(path):
    """The names a re-export module at the root imports, and from where; nothing else in it."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    assert all(isinstance(node, (ast.ImportFrom, ast.Import)) for node in body), f"{path} holds more than imports"
    return {(node.module, alias.name) for node in body if isinstance(node, ast.ImportFrom) for alias in node.names}


@pytest.mark.parametrize("module", sorted(ORIGINAL_MODULES))
def test_the_modules_at_the_root_are_the_re_exports_of_the_table(module):
    target, names = ORIGINAL_MODULES[module]
    assert _shim_names(os.path.join(ROOT, *module.split(".")) + ".py") == {(target, name) for name in names}
    assert set(ORIGINAL_NAMES[module]) <= set(names)


def test_the_root_holds_the_original_packages_and_nothing_of_the_port():
    for package in ORIGINAL_PACKAGES:
        modules = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, package, "*.py"))} - {"__init__"}
        assert modules == {m.split(".")[1] for m in ORIGINAL_MODULES if m.split(".")[0] == package}, package
        _shim_names(os.path.join(ROOT, package, "__init__.py"))

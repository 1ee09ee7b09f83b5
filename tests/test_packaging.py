import ast
import os
import subprocess
import sys

from conftest import ROOT

ORIGINAL_PACKAGES = {
    "bounding_box_utils", "data_generator", "eval_utils", "keras_layers",
    "keras_loss_function", "misc_utils", "models", "ssd_encoder_decoder",
}


def test_setup_installs_every_original_package():
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    packages = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign) and node.targets[0].id == "PACKAGES")
    # The original's packages, plus the command line's.
    assert set(ast.literal_eval(packages)) == ORIGINAL_PACKAGES | {"ssd_keras_cli"}
    for package in ORIGINAL_PACKAGES | {"ssd_keras_cli"}:
        assert os.path.isfile(os.path.join(ROOT, package, "__init__.py"))


def test_original_import_paths_work_from_another_directory(tmp_path):
    code = (
        "from bounding_box_utils.bounding_box_utils import iou, convert_coordinates\n"
        "from ssd_encoder_decoder.ssd_input_encoder import SSDInputEncoder, DegenerateBoxError\n"
        "from ssd_encoder_decoder.ssd_output_decoder import decode_detections, decode_detections_fast\n"
        "from ssd_encoder_decoder.matching_utils import match_bipartite_greedy, match_multi\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_installed_ml_dtypes_is_not_the_one_that_slows_every_start():
    # ml_dtypes 0.7.0 spends about a second of CPU at its import (its NumPy loops are
    # registered in quadratic time), which every process that imports Keras pays.
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        required = [Requirement(r) for r in metadata.requires("ssd-keras") or []]
    except metadata.PackageNotFoundError:
        import pytest

        pytest.skip("the package is not installed in this environment (pip install -e .)")
    [ml_dtypes] = [r for r in required if r.name.replace("_", "-") == "ml-dtypes"]
    assert "0.7.0" not in ml_dtypes.specifier and "0.6.0" in ml_dtypes.specifier
    assert metadata.version("ml_dtypes") in ml_dtypes.specifier

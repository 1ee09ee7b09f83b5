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

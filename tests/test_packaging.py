"""The installed package: a wheel that puts only `ssd_keras` into site-packages, works from
any folder (the command included), and brings the original's paths back on request."""

import glob
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from conftest import ROOT

# The original's packages: generic names that must not land in a user's site-packages.
ORIGINAL_PACKAGES = (
    "bounding_box_utils",
    "data_generator",
    "eval_utils",
    "keras_layers",
    "keras_loss_function",
    "misc_utils",
    "models",
    "ssd_encoder_decoder",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from the files a fresh clone would hold (those git tracks or would add)."""
    source = tmp_path_factory.mktemp("clone")
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(source, name)) or source, exist_ok=True)
            with open(os.path.join(ROOT, name), "rb") as f, open(os.path.join(source, name), "wb") as g:
                g.write(f.read())
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = glob.glob(str(out / "ssd_keras-*.whl"))
    return path


def test_the_wheel_holds_only_the_ssd_keras_package(wheel):
    import ssd_keras

    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        entry_points = archive.read(f"ssd_keras-{ssd_keras.__version__}.dist-info/entry_points.txt").decode()
    assert tops == {"ssd_keras", f"ssd_keras-{ssd_keras.__version__}.dist-info"}
    assert "ssd-keras = ssd_keras.cli:main" in entry_points


@pytest.mark.slow
def test_the_installed_wheel_works_outside_the_repository_and_adds_no_generic_packages(wheel, tmp_path):
    # A fresh virtual environment with the wheel installed (not editable); its dependencies
    # come from this environment's site-packages, listed after its own in a .pth file.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(os.path.join(site, "zz_dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [name for name in ORIGINAL_PACKAGES if os.path.exists(os.path.join(site, name))]
    assert os.path.isdir(os.path.join(site, "ssd_keras"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    code = (
        "import ssd_keras, sys; print(ssd_keras.__file__); import importlib.util as u; "
        "print(u.find_spec('models'), u.find_spec('data_generator'))"
    )
    result = subprocess.run([python, "-c", code], cwd=outside, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [os.path.join(site, "ssd_keras", "__init__.py"), "None None"]
    # The original's paths, on request.
    code = (
        "import ssd_keras; ssd_keras.use_original_paths()\n"
        "from data_generator.object_detection_2d_data_generator import DataGenerator\n"
        "from ssd_encoder_decoder.ssd_output_decoder import decode_detections\n"
        "from ssd_keras.data.generator import DataGenerator as D\n"
        "assert DataGenerator is D and decode_detections.__module__ == 'ssd_keras.encoding.output_decoder'\n"
        "print('ok')\n"
    )
    result = subprocess.run([python, "-c", code], cwd=outside, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
    # The command, as a user runs it.
    result = subprocess.run(
        [str(venv / "bin" / "ssd-keras"), "demo", "--smoke", "--quiet", "--out", "demo"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Demo mAP (VOC 11-point, held-out split):" in result.stdout
    assert os.path.isfile(outside / "demo" / "ssd7_shapes.keras") and os.path.isfile(outside / "demo" / "metrics.json")


def test_the_version_comes_from_one_place():
    import tomllib

    import ssd_keras

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ssd_keras.__version__"}
    assert ssd_keras.__version__.count(".") == 2


def test_the_installed_ml_dtypes_is_not_the_one_that_slows_every_start():
    # ml_dtypes 0.7.0 spends about a second of CPU at its import (its NumPy loops are
    # registered in quadratic time), which every process that imports Keras pays.
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        required = [Requirement(r) for r in metadata.requires("ssd-keras") or []]
    except metadata.PackageNotFoundError:
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    [ml_dtypes] = [r for r in required if r.name.replace("_", "-") == "ml-dtypes"]
    assert "0.7.0" not in ml_dtypes.specifier and "0.6.0" in ml_dtypes.specifier
    assert metadata.version("ml_dtypes") in ml_dtypes.specifier

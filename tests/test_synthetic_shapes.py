"""The synthetic shapes data set: VOC layout, seeded, boxes that fit the drawn pixels."""

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ssd_keras.data.generator import DataGenerator
from ssd_keras.data.synthetic_shapes import SHAPE_CLASSES, _background, make_image, make_shapes_dataset


def _objects(path):
    root = ET.parse(path).getroot()
    return [
        (
            o.find("name").text,
            [int(o.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax")],
            int(o.find("difficult").text),
            int(o.find("truncated").text),
        )
        for o in root.iter("object")
    ]


@pytest.mark.parametrize("seed", range(12))
def test_a_single_shape_box_is_tight_around_the_changed_pixels(seed):
    # Replay the generator's draws to get the bare background, then compare.
    image, objects = make_image(np.random.default_rng(seed), max_objects=1, truncation_prob=0.0, small_prob=0.0)
    replay = np.random.default_rng(seed)
    height = int(replay.integers(160, 257))
    width = int(replay.integers(160, 321))
    background = _background(replay, height, width)
    assert image.shape == background.shape == (height, width, 3)
    (obj,) = objects
    ys, xs = np.nonzero(np.any(image != background, axis=-1))
    # Box edges: columns xmin .. xmax - 1 are drawn. Anti-aliasing may touch one more pixel.
    assert abs(xs.min() - obj["xmin"]) <= 1 and abs(xs.max() + 1 - obj["xmax"]) <= 1
    assert abs(ys.min() - obj["ymin"]) <= 1 and abs(ys.max() + 1 - obj["ymax"]) <= 1
    assert obj["truncated"] == 0 and obj["difficult"] == 0


def test_dataset_layout_flags_and_parse_xml(tmp_path):
    info = make_shapes_dataset(str(tmp_path / "shapes"), n_trainval=40, n_test=10, seed=3, verbose=False)
    for key in ("images_dir", "annotations_dir", "trainval", "test"):
        assert os.path.exists(info[key])
    assert info["classes"] == list(SHAPE_CLASSES)
    with open(info["trainval"]) as f:
        trainval = f.read().split()
    with open(info["test"]) as f:
        test = f.read().split()
    assert len(trainval) == 40 and len(test) == 10 and not set(trainval) & set(test)
    flags = np.array(
        [(d, t) for i in trainval + test for _, _, d, t in _objects(info["annotations_dir"] + f"/{i}.xml")]
    )
    assert flags[:, 0].sum() > 0 and flags[:, 1].sum() > 0  # some difficult and some truncated objects
    sizes = set()
    for image_id in trainval[:10]:
        root = ET.parse(f"{info['annotations_dir']}/{image_id}.xml").getroot()
        w, h = int(root.find("size/width").text), int(root.find("size/height").text)
        sizes.add((h, w))
        for _, (x1, y1, x2, y2), _, _ in _objects(f"{info['annotations_dir']}/{image_id}.xml"):
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert len(sizes) > 1  # varying image sizes

    dataset = DataGenerator(verbose=False)
    dataset.parse_xml(
        [info["images_dir"]], [info["trainval"]], [info["annotations_dir"]], classes=info["classes"], verbose=False
    )
    assert dataset.dataset_size == 40
    first = _objects(f"{info['annotations_dir']}/{trainval[0]}.xml")
    np.testing.assert_array_equal(dataset.labels[0][:, 1:], [box for _, box, _, _ in first])
    np.testing.assert_array_equal(dataset.labels[0][:, 0], [info["classes"].index(n) for n, _, _, _ in first])
    np.testing.assert_array_equal(dataset.eval_neutral[0], [bool(d) for _, _, d, _ in first])


def test_same_seed_same_files_and_regeneration_on_new_arguments(tmp_path):
    a = make_shapes_dataset(str(tmp_path / "a"), 5, 2, seed=7, verbose=False)
    b = make_shapes_dataset(str(tmp_path / "b"), 5, 2, seed=7, verbose=False)
    for name in sorted(os.listdir(a["annotations_dir"])):
        with open(os.path.join(a["annotations_dir"], name)) as fa, open(os.path.join(b["annotations_dir"], name)) as fb:
            assert fa.read() == fb.read()
    stamp = os.path.join(a["root"], "dataset.txt")
    before = os.path.getmtime(os.path.join(a["annotations_dir"], "000001.xml"))
    make_shapes_dataset(str(tmp_path / "a"), 5, 2, seed=7, verbose=False)  # kept
    assert os.path.getmtime(os.path.join(a["annotations_dir"], "000001.xml")) == before
    make_shapes_dataset(str(tmp_path / "a"), 5, 2, seed=8, verbose=False)  # new seed: rewritten
    with open(stamp) as f:
        assert "'seed': 8" in f.read()


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="circle"):
        make_image(np.random.default_rng(0), classes=("background", "hexagon"))
    with pytest.raises(ValueError, match="non-negative"):
        make_shapes_dataset(str(tmp_path), n_trainval=-1)
    with pytest.raises(ValueError, match="background"):
        make_shapes_dataset(str(tmp_path), classes=("circle",))

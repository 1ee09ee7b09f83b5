"""DataGenerator: parsers on data sets written here, batches, HDF5, the Keras adapter, bad data."""

import json
import os
import pickle

import cv2
import h5py
import numpy as np
import pytest

from ssd_keras.data.generator import DataGenerator, load_image
from ssd_keras.data.transforms.geometric import Resize
from ssd_keras.data.transforms.inverse import apply_inverse_transforms
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.errors import DatasetError, DegenerateBatchError, DegenerateBoxError

CLASSES = ["background", "cat", "dog"]
# (image id, height, width, objects [(name, xmin, ymin, xmax, ymax, difficult, truncated)])
VOC = [
    ("img_a", 40, 60, [("cat", 5, 6, 25.5, 30, 0, 0), ("dog", 30, 2, 55, 20, 1, 0)]),
    ("img_b", 50, 50, [("dog", 10, 10, 40, 45, 0, 1)]),
    ("img_c", 40, 60, []),
]


def _draw(path, height, width, boxes, seed=0):
    image = np.random.default_rng(seed).integers(0, 60, (height, width, 3), dtype=np.uint8)
    for i, (xmin, ymin, xmax, ymax) in enumerate(boxes):
        image[int(ymin) : int(ymax), int(xmin) : int(xmax)] = (200 + 20 * i, 100, 50)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return image


def _voc_xml(objects, height, width):
    parts = [f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for name, xmin, ymin, xmax, ymax, difficult, truncated in objects:
        parts.append(
            f"<object><name>{name}</name><truncated>{truncated}</truncated><difficult>{difficult}</difficult>"
            f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        )
    return "".join(parts) + "</annotation>"


@pytest.fixture
def voc(tmp_path):
    images, annotations, sets = tmp_path / "JPEGImages", tmp_path / "Annotations", tmp_path / "ImageSets" / "Main"
    for d in (images, annotations, sets):
        d.mkdir(parents=True)
    for image_id, height, width, objects in VOC:
        _draw(images / f"{image_id}.png", height, width, [o[1:5] for o in objects])
        os.replace(
            images / f"{image_id}.png", images / f"{image_id}.jpg"
        )  # PNG bytes: lossless pixels under a .jpg name
        (annotations / f"{image_id}.xml").write_text(_voc_xml(objects, height, width))
    (sets / "trainval.txt").write_text("\n".join(v[0] for v in VOC) + "\n")
    return tmp_path


def _parse_voc(root, **kwargs):
    dataset = DataGenerator(verbose=False)
    dataset.parse_xml(
        [str(root / "JPEGImages")],
        [str(root / "ImageSets/Main/trainval.txt")],
        [str(root / "Annotations")],
        classes=CLASSES,
        verbose=False,
        **kwargs,
    )
    return dataset


def test_parse_xml(voc):
    dataset = _parse_voc(voc)
    assert dataset.get_dataset_size() == 3 and dataset.image_ids == ["img_a", "img_b", "img_c"]
    np.testing.assert_allclose(dataset.labels[0], [[1, 5, 6, 25.5, 30], [2, 30, 2, 55, 20]])  # float coordinates kept
    assert dataset.labels[2].shape == (0, 5)
    assert [list(n) for n in dataset.eval_neutral] == [[False, True], [False], []]
    assert dataset.filenames[1].endswith(os.path.join("JPEGImages", "img_b.jpg"))
    assert _parse_voc(voc, exclude_difficult=True).labels[0].tolist() == [[1, 5, 6, 25.5, 30]]
    assert len(_parse_voc(voc, exclude_truncated=True).labels[1]) == 0
    assert _parse_voc(voc, include_classes=[2]).labels[0][:, 0].tolist() == [2]
    out = DataGenerator(verbose=False).parse_xml(
        [str(voc / "JPEGImages")],
        [str(voc / "ImageSets/Main/trainval.txt")],
        [str(voc / "Annotations")],
        classes=CLASSES,
        ret=True,
        verbose=False,
    )
    assert len(out) == 5 and out[1] == dataset.filenames and out[0] is None


def test_parse_xml_bad_files(voc):
    (voc / "Annotations" / "img_b.xml").write_text(_voc_xml([("horse", 1, 1, 5, 5, 0, 0)], 50, 50))
    with pytest.raises(DatasetError, match=r"img_b.xml, object 0: unknown class name 'horse'"):
        _parse_voc(voc)
    (voc / "Annotations" / "img_b.xml").write_text("this is not XML <<<")
    with pytest.raises(DatasetError, match=r"img_b.xml is not a Pascal VOC annotation"):
        _parse_voc(voc)
    (voc / "Annotations" / "img_b.xml").write_text(
        "<annotation><object><name>cat</name><bndbox><xmin>a</xmin></bndbox></object></annotation>"
    )
    with pytest.raises(DatasetError, match=r"img_b.xml, object 0 \(cat\): missing or malformed <bndbox>"):
        _parse_voc(voc)
    os.remove(voc / "Annotations" / "img_b.xml")
    with pytest.raises(DatasetError, match="Cannot read annotation file .*img_b.xml"):
        _parse_voc(voc)


def test_parse_json(tmp_path):
    for name, size in (("a.jpg", (30, 40)), ("b.jpg", (20, 20))):
        _draw(tmp_path / name, *size, [])
    coco = {
        "images": [
            {"id": 7, "file_name": "a.jpg", "height": 30, "width": 40},
            {"id": 9, "file_name": "b.jpg", "height": 20, "width": 20},
        ],
        "categories": [{"id": 3, "name": "cat"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 18, "bbox": [1.5, 2.25, 10.0, 5.5]},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [20, 10, 8, 8]},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    dataset = DataGenerator(verbose=False)
    dataset.parse_json([str(tmp_path)], [str(tmp_path / "ann.json")], ground_truth_available=True, verbose=False)
    assert dataset.cats_to_classes == {3: 1, 18: 2} and dataset.classes_to_cats == {1: 3, 2: 18}
    assert dataset.classes_to_names == ["background", "cat", "dog"] and dataset.image_ids == [7, 9]
    np.testing.assert_allclose(dataset.labels[0], [[2, 1.5, 2.25, 11.5, 7.75], [1, 20, 10, 28, 18]])
    assert dataset.labels[1].shape == (0, 5)
    dataset.parse_json(
        [str(tmp_path)], [str(tmp_path / "ann.json")], ground_truth_available=True, include_classes=[3], verbose=False
    )
    assert dataset.labels[0][:, 0].tolist() == [1]
    coco["annotations"].append({"id": 3, "image_id": 7, "category_id": 99, "bbox": [0, 0, 1, 1]})
    (tmp_path / "bad.json").write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match=r"bad.json, annotation 2: unknown category id 99"):
        dataset.parse_json([str(tmp_path)], [str(tmp_path / "bad.json")], ground_truth_available=True, verbose=False)
    for bbox in ([0, 0, 1], [0, 0, "1", None], "0 0 1 1"):  # a TypeError, without the file, for the None
        coco["annotations"][2] = {"id": 3, "image_id": 9, "category_id": 3, "bbox": bbox}
        (tmp_path / "bad.json").write_text(json.dumps(coco))
        with pytest.raises(
            DatasetError, match=r"bad.json, annotation 2: expected .* a 'bbox' of 4 numbers; got \{'id': 3"
        ):
            dataset.parse_json(
                [str(tmp_path)], [str(tmp_path / "bad.json")], ground_truth_available=True, verbose=False
            )
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DatasetError, match="Cannot read COCO annotations from .*broken.json"):
        dataset.parse_json([str(tmp_path)], [str(tmp_path / "broken.json")], verbose=False)


def test_parse_csv(tmp_path):
    (tmp_path / "labels.csv").write_text(
        "frame,xmin,xmax,ymin,ymax,class_id\nb.jpg,1.5,10.25,2,8,2\na.jpg,3,9,4,12.5,1\nb.jpg,0,5,0,5,1\n"
    )
    dataset = DataGenerator(verbose=False)
    out = dataset.parse_csv(
        str(tmp_path),
        str(tmp_path / "labels.csv"),
        ["image_name", "xmin", "xmax", "ymin", "ymax", "class_id"],
        ret=True,
        verbose=False,
    )
    assert dataset.image_ids == ["a", "b"] and len(out) == 4
    np.testing.assert_allclose(dataset.labels[0], [[1, 3, 4, 9, 12.5]])  # (class_id, xmin, ymin, xmax, ymax)
    np.testing.assert_allclose(dataset.labels[1], [[1, 0, 0, 5, 5], [2, 1.5, 2, 10.25, 8]])
    (tmp_path / "bad.csv").write_text("frame,xmin,xmax,ymin,ymax,class_id\na.jpg,3,nine,4,12,1\n")
    with pytest.raises(DatasetError, match=r"bad.csv, line 2: cannot read a box"):
        dataset.parse_csv(
            str(tmp_path), str(tmp_path / "bad.csv"), ["image_name", "xmin", "xmax", "ymin", "ymax", "class_id"]
        )
    with pytest.raises(ValueError, match="input_format"):
        dataset.parse_csv(str(tmp_path), str(tmp_path / "labels.csv"), ["image_name", "xmin"])


def test_generate_batches_and_returns(voc):
    dataset = _parse_voc(voc)
    resize = Resize(32, 32)
    batches = dataset.generate(
        batch_size=2,
        shuffle=False,
        transformations=[resize],
        keep_images_without_gt=True,
        returns={
            "processed_images",
            "processed_labels",
            "filenames",
            "image_ids",
            "evaluation-neutral",
            "inverse_transform",
            "original_images",
            "original_labels",
        },
    )
    images, labels, filenames, ids, neutral, inverters, originals, original_labels = next(batches)
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8 and ids == ["img_a", "img_b"]
    np.testing.assert_allclose(
        labels[0], [[1, 5 * 32 / 60, 6 * 32 / 40, 25.5 * 32 / 60, 30 * 32 / 40], [2, 16, 1.6, 55 * 32 / 60, 16]]
    )
    np.testing.assert_allclose(original_labels[0], dataset.labels[0])
    assert (
        originals[1].shape == (50, 50, 3) and filenames[0] == dataset.filenames[0] and list(neutral[0]) == [False, True]
    )
    # Drawn pixels came through: the cat box of img_a is bright red in the original.
    assert originals[0][10, 10, 0] == 200
    prediction = np.column_stack([labels[0][:, :1], np.ones(2), labels[0][:, 1:]])
    np.testing.assert_allclose(
        apply_inverse_transforms([prediction], inverters[:1])[0][:, 2:], dataset.labels[0][:, 1:]
    )
    images, *_ = next(batches)
    assert len(images) == 1  # the last batch of a pass is short (img_c kept without boxes: no crash, issue #143)
    images, *_ = next(batches)
    assert len(images) == 2  # the next pass
    # Without keep_images_without_gt, img_c is dropped.
    images, labels = next(
        dataset.generate(
            batch_size=3, shuffle=False, transformations=[resize], returns=("processed_images", "processed_labels")
        )
    )
    assert len(images) == 2


def test_generate_with_encoder_shuffles_every_item_once(voc):
    dataset = _parse_voc(voc)
    encoder = SSDInputEncoder(32, 32, 2, [(4, 4), (2, 2)], scales=[0.2, 0.5, 0.9])
    ids = []
    batches = dataset.generate(
        batch_size=1,
        shuffle=True,
        transformations=[Resize(32, 32)],
        label_encoder=encoder,
        returns=("processed_images", "encoded_labels", "matched_anchors", "image_ids"),
    )
    for _ in range(2):
        images, y, matched, image_ids = next(batches)
        assert y.shape == (1, encoder.n_boxes_total, 3 + 12) and matched.shape == y.shape
        ids += image_ids
    assert sorted(ids) == ["img_a", "img_b"]


def test_bad_data_paths(voc, tmp_path):
    dataset = _parse_voc(voc)
    os.remove(voc / "JPEGImages" / "img_b.jpg")
    with pytest.raises(DatasetError, match=r"Image file not found: .*img_b.jpg"):
        next(dataset.generate(batch_size=3, shuffle=False, transformations=[Resize(32, 32)]))
    (voc / "JPEGImages" / "img_b.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"Cannot decode image file: .*img_b.jpg"):
        load_image(str(voc / "JPEGImages" / "img_b.jpg"))
    dataset = _parse_voc(voc)
    dataset.labels[0][1, 3] = 20  # xmax == xmin: degenerate
    _draw(voc / "JPEGImages" / "img_b.png", 50, 50, [])
    os.replace(voc / "JPEGImages" / "img_b.png", voc / "JPEGImages" / "img_b.jpg")
    args = dict(
        batch_size=3, shuffle=False, transformations=[Resize(32, 32)], returns=("processed_images", "processed_labels")
    )
    with pytest.warns(UserWarning, match=r"img_a.jpg: degenerate box"):
        _, labels = next(dataset.generate(degenerate_box_handling="warn", **args))
    assert len(labels[0]) == 2
    with pytest.raises(DegenerateBoxError, match="img_a.jpg"):
        next(dataset.generate(degenerate_box_handling="error", **args))
    with pytest.warns(UserWarning, match=r"img_a.jpg: degenerate box.*\(removed\)"):
        _, labels = next(dataset.generate(**args))  # 'remove'
    assert len(labels[0]) == 1
    dataset = _parse_voc(voc)
    with pytest.raises(DegenerateBatchError, match="one size"):
        next(dataset.generate(batch_size=2, shuffle=False, returns=("processed_images",)))
    with pytest.raises(ValueError, match="degenerate_box_handling"):
        next(dataset.generate(degenerate_box_handling="ignore"))
    with pytest.raises(ValueError, match="Unknown `returns`"):
        next(dataset.generate(returns=("images",)))
    with pytest.raises(DatasetError, match="empty data set"):
        next(DataGenerator(verbose=False).generate())
    with pytest.raises(DatasetError, match="`labels` has 1 entries but there are 2 images"):
        DataGenerator(filenames=["a", "b"], labels=[[]], verbose=False)
    dataset = _parse_voc(voc)
    dataset.labels[1][0, 3] = 51  # xmax beyond the 50-pixel width of img_b
    with pytest.raises(
        DatasetError, match=r"img_b.jpg: box\(es\) outside the 50x50 image: \[\[2.0, 10.0, 10.0, 51.0, 45.0\]\]"
    ):
        next(dataset.generate(degenerate_box_handling="error", **args))
    with pytest.warns(UserWarning, match=r"img_b.jpg: box\(es\) outside .*\(removed\)"):
        images, labels = next(dataset.generate(**args))
    assert len(images) == 1  # img_b lost its only box


def test_hdf5_round_trip_equals_the_directory(voc, tmp_path):
    dataset = _parse_voc(voc)
    path = str(tmp_path / "data.h5")
    dataset.create_hdf5_dataset(path, verbose=False)
    loaded = DataGenerator(hdf5_dataset_path=path, verbose=False)
    assert loaded.dataset_size == 3 and loaded.image_ids == dataset.image_ids
    for a, b in zip(loaded.labels, dataset.labels):
        np.testing.assert_allclose(a, b)  # float coordinates survive (the original stored int32)
    assert [list(n) for n in loaded.eval_neutral] == [list(n) for n in dataset.eval_neutral]
    direct = next(
        dataset.generate(
            batch_size=3,
            shuffle=False,
            keep_images_without_gt=True,
            transformations=[Resize(32, 32)],
            returns=("processed_images", "processed_labels"),
        )
    )
    from_file = next(
        loaded.generate(
            batch_size=3,
            shuffle=False,
            keep_images_without_gt=True,
            transformations=[Resize(32, 32)],
            returns=("processed_images", "processed_labels"),
        )
    )
    np.testing.assert_array_equal(from_file[0], direct[0])
    # Resized export scales the labels too (the original did not).
    resized = DataGenerator(hdf5_dataset_path=path, load_images_into_memory=True, verbose=False)
    resized.create_hdf5_dataset(str(tmp_path / "small.h5"), resize=(20, 30), verbose=False)
    np.testing.assert_allclose(resized.labels[0][0], [1, 2.5, 3, 12.75, 15])
    assert resized.hdf5_dataset["image_shapes"][0].tolist() == [20, 30, 3]


def _with_exif_orientation(jpeg, orientation):
    """`jpeg` bytes with an Exif APP1 segment whose Orientation tag (0x0112) is `orientation`."""
    tiff = b"MM\x00*" + (8).to_bytes(4, "big") + (1).to_bytes(2, "big")  # big-endian header, one IFD entry
    tiff += (
        (0x0112).to_bytes(2, "big")
        + (3).to_bytes(2, "big")
        + (1).to_bytes(4, "big")
        + orientation.to_bytes(2, "big")
        + b"\x00\x00"
    )
    tiff += (0).to_bytes(4, "big")  # no next IFD
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def test_images_are_read_as_stored_whatever_their_exif_orientation(tmp_path):
    # The original read with PIL, which leaves the pixels as stored; boxes annotated on them
    # (as VOC tools do) would be wrong on an image that OpenCV's default reading rotated.
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :10] = 255  # a white band on the left
    path = tmp_path / "phone.jpg"
    path.write_bytes(
        _with_exif_orientation(cv2.imencode(".jpg", image)[1].tobytes(), 6)
    )  # 6: "rotate 90 degrees to view"
    assert cv2.imread(str(path)).shape == (40, 20, 3)  # the tag is there: OpenCV's default applies it
    loaded = load_image(str(path))
    assert loaded.shape == (20, 40, 3) and loaded[:, :10].min() > 200 and loaded[:, 12:].max() < 50


def test_an_hdf5_data_set_written_by_the_original_loads(tmp_path):
    # The original's create_hdf5_dataset layout: vlen uint8 images, int32 labels, vlen str ids,
    # vlen bool eval_neutral, boolean attributes (users have these files of VOC 07+12).
    rng = np.random.default_rng(0)
    path = str(tmp_path / "dataset_pascal_voc_07+12_trainval.h5")
    images = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)]
    labels = [
        np.array([[1, 5, 5, 20, 20], [2, 10, 8, 30, 25]], np.int32),
        np.array([[3, 0, 1, 39, 29]], np.int32),
        np.zeros((0, 5), np.int32),
    ]
    with h5py.File(path, "w") as f:
        for name in ("has_labels", "has_image_ids", "has_eval_neutral", "variable_image_size"):
            f.attrs.create(name=name, data=True, shape=None, dtype=np.bool_)
        vlen = h5py.special_dtype
        columns = {
            "images": f.create_dataset("images", shape=(3,), maxshape=(None,), dtype=vlen(vlen=np.uint8)),
            "image_shapes": f.create_dataset("image_shapes", shape=(3, 3), maxshape=(None, 3), dtype=np.int32),
            "labels": f.create_dataset("labels", shape=(3,), maxshape=(None,), dtype=vlen(vlen=np.int32)),
            "label_shapes": f.create_dataset("label_shapes", shape=(3, 2), maxshape=(None, 2), dtype=np.int32),
            "image_ids": f.create_dataset("image_ids", shape=(3,), maxshape=(None,), dtype=vlen(vlen=str)),
            "eval_neutral": f.create_dataset("eval_neutral", shape=(3,), maxshape=(None,), dtype=vlen(vlen=np.bool_)),
        }
        for i, (image, label) in enumerate(zip(images, labels)):
            columns["images"][i], columns["image_shapes"][i] = image.reshape(-1), image.shape
            columns["labels"][i], columns["label_shapes"][i] = label.reshape(-1), label.shape
            columns["image_ids"][i], columns["eval_neutral"][i] = f"00000{i}", np.arange(len(label)) == 1
    loaded = DataGenerator(hdf5_dataset_path=path, verbose=False)
    assert loaded.dataset_size == 3 and loaded.image_ids == ["000000", "000001", "000002"]
    for got, expected in zip(loaded.labels, labels):
        np.testing.assert_array_equal(got, expected)
    assert [list(n) for n in loaded.eval_neutral] == [[False, True], [False], []]
    batch_images, batch_labels, ids = next(
        loaded.generate(
            batch_size=3,
            shuffle=False,
            transformations=[],
            returns=("processed_images", "processed_labels", "image_ids"),
        )
    )
    np.testing.assert_array_equal(batch_images, np.stack(images[:2]))  # the image without boxes is left out
    assert ids == ["000000", "000001"] and [len(b) for b in batch_labels] == [2, 1]


def test_interrupted_hdf5_export_leaves_no_file(voc, tmp_path, monkeypatch):
    dataset = _parse_voc(voc)
    calls = []

    def failing_image(i):
        calls.append(i)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return load_image(dataset.filenames[i])

    monkeypatch.setattr(dataset, "_image", failing_image)
    path = tmp_path / "data.h5"
    with pytest.raises(KeyboardInterrupt):
        dataset.create_hdf5_dataset(str(path), verbose=False)
    assert not path.exists() and not list(tmp_path.glob("*.part"))
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(DatasetError, match="not a complete data set"):
        DataGenerator(hdf5_dataset_path=str(path), verbose=False)


def test_lists_from_pickles_and_text_files(voc, tmp_path):
    dataset = _parse_voc(voc)
    paths = {k: str(tmp_path / f"{k}.pkl") for k in ("filenames", "labels", "image_ids", "eval_neutral")}
    dataset.save_dataset(paths["filenames"], paths["labels"], paths["image_ids"], paths["eval_neutral"])
    copy = DataGenerator(
        filenames=paths["filenames"],
        filenames_type="pickle",
        labels=paths["labels"],
        image_ids=paths["image_ids"],
        eval_neutral=paths["eval_neutral"],
        verbose=False,
    )
    assert copy.get_dataset()[0] == dataset.filenames and copy.image_ids == dataset.image_ids
    (tmp_path / "names.txt").write_text("img_a.jpg\nimg_b.jpg\n")
    text = DataGenerator(
        filenames=str(tmp_path / "names.txt"),
        images_dir=str(voc / "JPEGImages"),
        load_images_into_memory=True,
        verbose=False,
    )
    assert text.dataset_size == 2 and text.images[1].shape == (50, 50, 3)
    with open(paths["labels"], "rb") as f:
        assert len(pickle.load(f)) == 3


@pytest.mark.backends
@pytest.mark.slow
def test_model_fit_runs_one_epoch_from_the_adapter(voc):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    from ssd_keras.losses.ssd_loss import SSDLoss
    from ssd_keras.models.ssd7 import build_model

    model, sizes = build_model(
        (64, 64, 3), 2, scales=[0.2, 0.4, 0.6, 0.8, 0.95], normalize_coords=True, return_predictor_sizes=True
    )
    encoder = SSDInputEncoder(
        64, 64, 2, sizes, scales=[0.2, 0.4, 0.6, 0.8, 0.95], normalize_coords=True, variances=[1.0] * 4
    )
    dataset = _parse_voc(voc)
    train = dataset.keras_dataset(
        batch_size=1, transformations=[Resize(64, 64)], label_encoder=encoder, workers=2, seed=0
    )
    assert len(train) == 2  # img_c has no boxes
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SSDLoss().compute_loss)
    history = model.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    x, y = train[0]
    assert x.shape[1:] == (64, 64, 3) and y.shape == (len(x), encoder.n_boxes_total, 3 + 12)


def test_the_command_lines_data_names_swapped_boxes_and_missing_images(voc):
    import warnings

    from ssd_keras.data.loading import load_dataset

    def load():
        return load_dataset(
            "voc",
            [str(voc / "JPEGImages")],
            [str(voc / "ImageSets/Main/trainval.txt")],
            [str(voc / "Annotations")],
            classes=CLASSES,
            verbose=False,
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say; img_c has no boxes
        assert len(load().filenames) == 3
    (voc / "Annotations" / "img_a.xml").write_text(
        _voc_xml([("cat", 5, 6, 25.5, 30, 0, 0), ("dog", 55, 2, 30, 20, 0, 0)], 40, 60)
    )
    with pytest.warns(UserWarning) as caught:
        load()
    assert [str(w.message) for w in caught] == [
        f"1 of 3 boxes in {voc / 'ImageSets/Main/trainval.txt'} have xmax <= xmin or ymax <= ymin (training leaves "
        "them out; "
        "evaluation counts them as objects to find): img_a.jpg (xmin 55, ymin 2, xmax 30, ymax 20)"
    ]
    os.remove(voc / "JPEGImages" / "img_b.jpg")
    with pytest.warns(UserWarning), pytest.raises(FileNotFoundError) as error:
        load()
    assert str(error.value) == (
        f"1 of 3 image files that {voc / 'ImageSets/Main/trainval.txt'} names are missing: "
        f"{voc / 'JPEGImages' / 'img_b.jpg'}"
    )


@pytest.mark.backends
@pytest.mark.slow
def test_an_image_that_fails_in_fit_is_kept_by_the_data_set_unwrapped(tmp_path):
    # TensorFlow's input pipeline hands the error of a batch on as an UnknownError with the
    # traceback as text; the data set keeps the error itself, for `ssd-keras train` to name.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    from ssd_keras.losses.ssd_loss import SSDLoss
    from ssd_keras.models.ssd7 import build_model

    filenames = [str(tmp_path / f"img{i}.png") for i in range(5)]
    for i, path in enumerate(filenames):
        _draw(path, 64, 64, [[8, 8, 40, 40]], seed=i)
    dataset = DataGenerator(filenames=filenames, labels=[np.array([[1, 8, 8, 40, 40]], float)] * 5, verbose=False)
    model, sizes = build_model(
        (64, 64, 3), 1, scales=[0.2, 0.4, 0.6, 0.8, 0.95], normalize_coords=True, return_predictor_sizes=True
    )
    encoder = SSDInputEncoder(64, 64, 1, sizes, scales=[0.2, 0.4, 0.6, 0.8, 0.95], normalize_coords=True)
    data = dataset.keras_dataset(batch_size=1, shuffle=False, transformations=[Resize(64, 64)], label_encoder=encoder)
    os.remove(filenames[4])  # batch 4: after the two batches Keras builds up front to learn their shapes
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss=SSDLoss().compute_loss)
    with pytest.raises(Exception) as info:
        model.fit(data, epochs=1, verbose=0)
    assert (
        isinstance(data.batch_error, DatasetError) and str(data.batch_error) == f"Image file not found: {filenames[4]}"
    )
    if keras.backend.backend() == "tensorflow":
        assert type(info.value).__name__ == "UnknownError" and "Image file not found" in str(info.value)
    else:
        assert info.value is data.batch_error


def test_worker_reseeding_gives_each_process_its_own_stream():
    from ssd_keras.data.augmentation.original_ssd import SSDDataAugmentation
    from ssd_keras.utils.rng import reseed_generators as _reseed

    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    labels = np.array([[1, 10, 10, 40, 30]], float)

    def run(seed):
        chain = SSDDataAugmentation(40, 40, rng=0)  # as forked workers all inherit the same state
        _reseed([chain], seed)
        return [chain(image, labels)[0] for _ in range(4)]

    a, b, c = run(101), run(102), run(101)
    assert all(np.array_equal(x, y) for x, y in zip(a, c))  # reproducible per seed
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))  # different workers differ


def test_steps_per_epoch_runs_on_over_the_data_across_epochs():
    # 10 images, batch 3: 4 batches per pass. 3 steps per epoch: epoch 0 takes batches 0-2
    # of pass 0, epoch 1 batch 3 of pass 0 and batches 0-1 of pass 1.
    labels = [np.array([[1, 0, 0, 5, 5]], float) for _ in range(10)]
    dataset = DataGenerator(filenames=[f"img{i}.jpg" for i in range(10)], labels=labels, verbose=False)
    dataset.images = [np.full((8, 8, 3), i, np.uint8) for i in range(10)]
    data = dataset.keras_dataset(
        batch_size=3,
        shuffle=True,
        returns=("processed_images", "processed_labels"),
        workers=1,
        seed=4,
        steps_per_epoch=3,
    )
    assert len(data) == 3
    seen = []
    for _ in range(2):
        seen += [data[i][0][:, 0, 0, 0].tolist() for i in range(len(data))]
        data.on_epoch_end()
    first_pass = sum(seen[:4], [])
    assert sorted(first_pass) == list(range(10))  # every image once in the first pass
    assert [len(b) for b in seen] == [3, 3, 3, 1, 3, 3]
    assert sum(seen[4:], []) != first_pass[:6]  # the second pass has its own order
    with pytest.raises(ValueError, match="steps_per_epoch"):
        dataset.keras_dataset(steps_per_epoch=0)

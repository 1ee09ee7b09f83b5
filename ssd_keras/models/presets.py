"""The configurations of the original notebooks, in one place.

A preset is what a notebook passes to its builder (`ssd_300`, `ssd_512` or `build_model`
for SSD7), the matching thresholds it gives `SSDInputEncoder`, and the feature-map sizes
the model has at its default input size. The builders' defaults, the training engine, the
command line, the tests and the benchmarks all read them from here.

For an architecture by name ('ssd300', 'ssd512', 'ssd7'): `builder_kwargs` gives the
builder's keyword arguments with the Pascal VOC or COCO scales, `build` makes the model,
`make_encoder` its `SSDInputEncoder` (anchors read from the model, the notebook's matching).

* ``ssd300_voc``, ``ssd300_coco``: SSD300 with the Pascal VOC or MS COCO anchor scales
  (the "+COCO" VOC models of the original use the COCO scales too);
* ``ssd512_voc``, ``ssd512_coco``: SSD512 likewise;
* ``ssd7_udacity``: the SSD7 notebook's model for the Udacity driving data set.
"""

import copy
import dataclasses

MODELS = ("ssd300", "ssd512", "ssd7")  # the architectures, by name

AR3 = (1.0, 2.0, 0.5)
AR5 = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
SSD300_ASPECT_RATIOS = (AR3,) + (AR5,) * 3 + (AR3,) * 2
SSD512_ASPECT_RATIOS = (AR3,) + (AR5,) * 4 + (AR3,) * 2
SSD300_STEPS = (8, 16, 32, 64, 100, 300)
SSD512_STEPS = (8, 16, 32, 64, 128, 256, 512)
SSD300_SCALES = {"pascal": (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05), "coco": (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)}
SSD512_SCALES = {
    "pascal": (0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05),
    "coco": (0.04, 0.1, 0.26, 0.42, 0.58, 0.74, 0.9, 1.06),
}
SSD7_SCALES = (0.08, 0.16, 0.32, 0.64, 0.96)
VGG_MEAN = (123, 117, 104)  # Caffe's ImageNet mean, RGB
VARIANCES = (0.1, 0.1, 0.2, 0.2)


@dataclasses.dataclass(frozen=True)
class Preset:
    """One notebook configuration.

    Attributes:
        architecture: 'ssd300', 'ssd512' or 'ssd7'.
        image_size: the default ``(height, width, channels)``.
        n_classes: positive classes of the data set (20 VOC, 80 COCO, 5 Udacity).
        model: the builder's keyword arguments besides `image_size` and `n_classes`.
        matching: `SSDInputEncoder`'s matching arguments.
        predictor_sizes: the feature-map sizes at `image_size`.
    """

    architecture: str
    image_size: tuple
    n_classes: int
    model: dict
    matching: dict
    predictor_sizes: tuple


def _vgg(architecture, scales):
    ars, steps = (
        (SSD300_ASPECT_RATIOS, SSD300_STEPS) if architecture == "ssd300" else (SSD512_ASPECT_RATIOS, SSD512_STEPS)
    )
    return dict(
        l2_regularization=0.0005,
        scales=list(scales),
        aspect_ratios_per_layer=[list(a) for a in ars],
        two_boxes_for_ar1=True,
        steps=list(steps),
        offsets=[0.5] * len(steps),
        clip_boxes=False,
        variances=list(VARIANCES),
        normalize_coords=True,
        subtract_mean=list(VGG_MEAN),
        swap_channels=[2, 1, 0],
    )


_SSD300_SIZES = ((38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1))
_SSD512_SIZES = ((64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1))
_VGG_MATCHING = dict(matching_type="multi", pos_iou_threshold=0.5, neg_iou_limit=0.5)

PRESETS = {
    "ssd300_voc": Preset(
        "ssd300", (300, 300, 3), 20, _vgg("ssd300", SSD300_SCALES["pascal"]), _VGG_MATCHING, _SSD300_SIZES
    ),
    "ssd300_coco": Preset(
        "ssd300", (300, 300, 3), 80, _vgg("ssd300", SSD300_SCALES["coco"]), _VGG_MATCHING, _SSD300_SIZES
    ),
    "ssd512_voc": Preset(
        "ssd512", (512, 512, 3), 20, _vgg("ssd512", SSD512_SCALES["pascal"]), _VGG_MATCHING, _SSD512_SIZES
    ),
    "ssd512_coco": Preset(
        "ssd512", (512, 512, 3), 80, _vgg("ssd512", SSD512_SCALES["coco"]), _VGG_MATCHING, _SSD512_SIZES
    ),
    "ssd7_udacity": Preset(
        "ssd7",
        (300, 480, 3),
        5,
        dict(
            l2_regularization=0.0005,
            scales=list(SSD7_SCALES),
            aspect_ratios_global=[0.5, 1.0, 2.0],
            aspect_ratios_per_layer=None,
            two_boxes_for_ar1=True,
            steps=None,
            offsets=None,
            clip_boxes=False,
            variances=[1.0, 1.0, 1.0, 1.0],
            normalize_coords=True,
            subtract_mean=127.5,
            divide_by_stddev=127.5,
        ),
        dict(matching_type="multi", pos_iou_threshold=0.5, neg_iou_limit=0.3),
        ((37, 60), (18, 30), (9, 15), (4, 7)),
    ),
}


def get(name):
    """The preset `name` (see `PRESETS`).

    Raises:
        ValueError: for an unknown name.
    """
    if name not in PRESETS:
        raise ValueError(f"Expected a preset, one of {sorted(PRESETS)}. Received: {name!r}")
    return PRESETS[name]


def model_kwargs(name, n_classes=None, image_size=None):
    """The builder's keyword arguments of preset `name` (a new dict each time), for
    ``ssd_300(**kwargs)`` and the like; `n_classes` and `image_size` replace the preset's."""
    preset = get(name)
    kwargs = copy.deepcopy(preset.model)
    kwargs.update(
        image_size=tuple(image_size or preset.image_size),
        n_classes=preset.n_classes if n_classes is None else n_classes,
    )
    return kwargs


def encoder_kwargs(name, n_classes=None):
    """`SSDInputEncoder` keyword arguments of preset `name` at its default input size:
    the model's anchor settings, its feature-map sizes and the notebook's matching."""
    preset = get(name)
    model = model_kwargs(name, n_classes)
    anchor_keys = (
        "scales",
        "aspect_ratios_global",
        "aspect_ratios_per_layer",
        "two_boxes_for_ar1",
        "steps",
        "offsets",
        "clip_boxes",
        "variances",
        "normalize_coords",
    )
    kwargs = {key: model[key] for key in anchor_keys if key in model}
    kwargs.update(
        img_height=preset.image_size[0],
        img_width=preset.image_size[1],
        n_classes=model["n_classes"],
        predictor_sizes=[list(size) for size in preset.predictor_sizes],
        **preset.matching,
    )
    return kwargs


def _check_model(name):
    if name not in MODELS:
        raise ValueError(f"Expected `model` to be one of {set(MODELS)}. Received: model={name!r}")


def preset_name(name, scales="pascal"):
    """The `ssd_keras.models.presets` entry of model `name` with the 'pascal' or 'coco' scales."""
    _check_model(name)
    if name == "ssd7":
        return "ssd7_udacity"
    if scales not in ("pascal", "coco"):
        raise ValueError(f"Expected `scales` to be one of {{'pascal', 'coco'}} or a list. Received: scales={scales!r}")
    return f"{name}_{'voc' if scales == 'pascal' else 'coco'}"


def builder_kwargs(name, n_classes, image_size=None, scales="pascal"):
    """The notebook's keyword arguments for model `name` (without `mode`).

    Args:
        name: 'ssd300', 'ssd512' or 'ssd7'.
        n_classes: number of positive classes (20 for Pascal VOC, 80 for COCO).
        image_size: ``(height, width, channels)``; the notebook's size if None
            (300x300, 512x512, 300x480 for SSD7).
        scales: 'pascal' or 'coco' for SSD300/SSD512 (ignored for SSD7), or an explicit list.

    Returns:
        A dict for ``ssd_300(**kwargs)`` / ``ssd_512`` / ``build_model``.
    """
    explicit = None if isinstance(scales, str) else list(scales)
    kwargs = model_kwargs(preset_name(name, "pascal" if explicit is not None else scales), n_classes, image_size)
    if explicit is not None:
        kwargs["scales"] = explicit
    return kwargs


def builder(name):
    """The original builder function of model `name`."""
    _check_model(name)
    if name == "ssd300":
        from ssd_keras.models.ssd300 import ssd_300

        return ssd_300
    if name == "ssd512":
        from ssd_keras.models.ssd512 import ssd_512

        return ssd_512
    from ssd_keras.models.ssd7 import build_model

    return build_model


def build(name, kwargs, mode="training", **decode_args):
    """Builds model `name` from `builder_kwargs` output; returns ``(model, predictor_sizes)``."""
    return builder(name)(mode=mode, return_predictor_sizes=True, **kwargs, **decode_args)


def make_encoder(name, model, **overrides):
    """The `SSDInputEncoder` of the notebooks for `model`: its anchors read from the
    model (`SSDInputEncoder.from_model`), the notebook's matching thresholds.

    `overrides` replace matching arguments, e.g. ``neg_iou_limit=0.5``.
    """
    from ssd_keras.encoding.input_encoder import SSDInputEncoder

    matching = dict(get(preset_name(name)).matching)
    matching.update(overrides)
    return SSDInputEncoder.from_model(model, **matching)

"""The model configurations of the original notebooks, in one place.

`model_kwargs` gives the keyword arguments the notebooks pass to `ssd_300`, `ssd_512`
and `build_model` (SSD7); `build` makes the model; `make_encoder` makes the
`SSDInputEncoder` that matches a model (same anchors, the notebook's matching
thresholds). The command line and the demo use these, and so can user code.
"""

import numpy as np

MODELS = ("ssd300", "ssd512", "ssd7")

# Scales of the notebooks: Pascal VOC, and COCO (also used by the "+COCO" VOC models).
SSD300_SCALES = {"pascal": [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05], "coco": [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]}
SSD512_SCALES = {"pascal": [0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05], "coco": [0.04, 0.1, 0.26, 0.42, 0.58, 0.74, 0.9, 1.06]}
SSD7_SCALES = [0.08, 0.16, 0.32, 0.64, 0.96]

_AR3 = [1.0, 2.0, 0.5]
_AR5 = [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0]

DEFAULT_IMAGE_SIZE = {"ssd300": (300, 300, 3), "ssd512": (512, 512, 3), "ssd7": (300, 480, 3)}
# The notebooks' encoder threshold for negatives.
NEG_IOU_LIMIT = {"ssd300": 0.5, "ssd512": 0.5, "ssd7": 0.3}


def _check_model(name):
    if name not in MODELS:
        raise ValueError(f"Expected `model` to be one of {set(MODELS)}. Received: model={name!r}")


def model_kwargs(name, n_classes, image_size=None, scales="pascal"):
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
    _check_model(name)
    image_size = tuple(image_size) if image_size is not None else DEFAULT_IMAGE_SIZE[name]
    if name == "ssd7":
        return dict(image_size=image_size, n_classes=n_classes, l2_regularization=0.0005,
                    scales=list(scales) if not isinstance(scales, str) else list(SSD7_SCALES),
                    aspect_ratios_global=[0.5, 1.0, 2.0], aspect_ratios_per_layer=None, two_boxes_for_ar1=True, steps=None,
                    offsets=None, clip_boxes=False, variances=[1.0, 1.0, 1.0, 1.0], normalize_coords=True,
                    subtract_mean=127.5, divide_by_stddev=127.5)
    table = SSD300_SCALES if name == "ssd300" else SSD512_SCALES
    if isinstance(scales, str):
        if scales not in table:
            raise ValueError(f"Expected `scales` to be one of {set(table)} or a list. Received: scales={scales!r}")
        scales = table[scales]
    if name == "ssd300":
        ars, steps = [_AR3] + [_AR5] * 3 + [_AR3] * 2, [8, 16, 32, 64, 100, 300]
    else:
        ars, steps = [_AR3] + [_AR5] * 4 + [_AR3] * 2, [8, 16, 32, 64, 128, 256, 512]
    return dict(image_size=image_size, n_classes=n_classes, l2_regularization=0.0005, scales=list(scales),
                aspect_ratios_per_layer=[list(a) for a in ars], two_boxes_for_ar1=True, steps=steps,
                offsets=[0.5] * len(steps), clip_boxes=False, variances=[0.1, 0.1, 0.2, 0.2], normalize_coords=True,
                subtract_mean=[123, 117, 104], swap_channels=[2, 1, 0])


def builder(name):
    """The original builder function of model `name`."""
    _check_model(name)
    if name == "ssd300":
        from models.keras_ssd300 import ssd_300
        return ssd_300
    if name == "ssd512":
        from models.keras_ssd512 import ssd_512
        return ssd_512
    from models.keras_ssd7 import build_model
    return build_model


def build(name, kwargs, mode="training", **decode_args):
    """Builds model `name` from `model_kwargs` output; returns ``(model, predictor_sizes)``."""
    return builder(name)(mode=mode, return_predictor_sizes=True, **kwargs, **decode_args)


def make_encoder(name, kwargs, predictor_sizes, **overrides):
    """The `SSDInputEncoder` of the notebooks for a model built from `kwargs`.

    `overrides` replace encoder arguments, e.g. ``neg_iou_limit=0.5``.
    """
    from ssd_encoder_decoder.ssd_input_encoder import SSDInputEncoder

    height, width = kwargs["image_size"][:2]
    keys = ("scales", "aspect_ratios_per_layer", "two_boxes_for_ar1", "steps", "offsets", "clip_boxes", "variances", "normalize_coords")
    encoder_args = {key: kwargs[key] for key in keys if key in kwargs}
    if name == "ssd7":
        encoder_args["aspect_ratios_global"] = kwargs["aspect_ratios_global"]
    encoder_args.update(matching_type="multi", pos_iou_threshold=0.5, neg_iou_limit=NEG_IOU_LIMIT[name])
    encoder_args.update(overrides)
    return SSDInputEncoder(img_height=height, img_width=width, n_classes=kwargs["n_classes"], predictor_sizes=np.asarray(predictor_sizes),
                           **encoder_args)

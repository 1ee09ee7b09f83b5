"""The model configurations of the original notebooks, in one place.

`model_kwargs` gives the keyword arguments the notebooks pass to `ssd_300`, `ssd_512`
and `build_model` (SSD7), from `models.presets`; `build` makes the model; `make_encoder` makes the
`SSDInputEncoder` of a model (its anchors read from the model, the notebook's matching
thresholds). The command line and the demo use these, and so can user code.
"""

MODELS = ("ssd300", "ssd512", "ssd7")


def _check_model(name):
    if name not in MODELS:
        raise ValueError(f"Expected `model` to be one of {set(MODELS)}. Received: model={name!r}")


def preset_name(name, scales="pascal"):
    """The `models.presets` entry of model `name` with the 'pascal' or 'coco' scales."""
    _check_model(name)
    if name == "ssd7":
        return "ssd7_udacity"
    if scales not in ("pascal", "coco"):
        raise ValueError(f"Expected `scales` to be one of {{'pascal', 'coco'}} or a list. Received: scales={scales!r}")
    return f"{name}_{'voc' if scales == 'pascal' else 'coco'}"


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
    from models import presets

    explicit = None if isinstance(scales, str) else list(scales)
    kwargs = presets.model_kwargs(preset_name(name, "pascal" if explicit is not None else scales), n_classes, image_size)
    if explicit is not None:
        kwargs["scales"] = explicit
    return kwargs


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


def make_encoder(name, model, **overrides):
    """The `SSDInputEncoder` of the notebooks for `model`: its anchors read from the
    model (`SSDInputEncoder.from_model`), the notebook's matching thresholds.

    `overrides` replace matching arguments, e.g. ``neg_iou_limit=0.5``.
    """
    from ssd_encoder_decoder.ssd_input_encoder import SSDInputEncoder

    from models import presets

    matching = dict(presets.get(preset_name(name)).matching)
    matching.update(overrides)
    return SSDInputEncoder.from_model(model, **matching)

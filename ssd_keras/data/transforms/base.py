"""What every transformation shares: the label layout, random generators, outputs.

Transformations are called ``transform(image, labels=None)`` (some also take
``return_inverter=True``) and return ``image`` without labels or ``(image, labels)``
with them, plus the inverter when asked for, as in ssd_keras. Labels are arrays
``(k, 5)`` whose columns `labels_format` names (default ``class_id, xmin, ymin, xmax,
ymax``, absolute pixel corners). Transformations never change the caller's arrays, and
keep label coordinates as floats (the original rounded them to integers).

Random transformations draw from a `numpy.random.Generator`: pass ``rng=<int seed>``
or a Generator to reproduce a run; the default is a generator seeded from the OS.
The augmentation chains pass one generator to all their parts.
"""

import copy

import numpy as np

from ssd_keras.utils.rng import as_rng  # noqa: F401  (the transformations' `rng=`; re-exported here)

DEFAULT_LABELS_FORMAT = {"class_id": 0, "xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4}


def copy_labels(labels):
    """A float64 copy of `labels` as a 2-D array, or None.

    Raises:
        ValueError: if the labels are not a 2-D array (an empty list is (0, 5)).
    """
    if labels is None:
        return None
    labels = np.array(labels, dtype=np.float64)
    if labels.size == 0:
        return labels.reshape(0, labels.shape[-1] if labels.ndim == 2 else 5)
    if labels.ndim != 2:
        raise ValueError(f"Expected labels of shape (n_boxes, n_columns). Received: shape={labels.shape}")
    return labels


def owned(part):
    """The transformation's own copy of a box filter or image validator it was given.

    Its label layout then follows the transformation's through the `labels_format`
    setter (list it in ``_children``), and no call ever writes into the caller's object.
    """
    return None if part is None else copy.deepcopy(part)


class LabelsFormat:
    """Mixin: the `labels_format` attribute and the four coordinate column indices."""

    def __init__(self, labels_format=None):
        self.labels_format = labels_format

    @property
    def labels_format(self):
        """The column of each box value: ``{'class_id': 0, 'xmin': 1, ...}``."""
        return self._labels_format

    @labels_format.setter
    def labels_format(self, labels_format):
        # Set at construction (DataGenerator gives its own copies another layout); chains
        # and the transformations' own box filters and validators follow through `_children`.
        """The column of each box value: ``{'class_id': 0, 'xmin': 1, ...}``."""
        labels_format = dict(DEFAULT_LABELS_FORMAT if labels_format is None else labels_format)
        missing = {"xmin", "ymin", "xmax", "ymax"} - set(labels_format)
        if missing:
            raise ValueError(f"`labels_format` lacks {sorted(missing)}. Received: labels_format={labels_format}")
        self._labels_format = labels_format
        for child in getattr(self, "_children", ()):
            child.labels_format = labels_format

    def own_parts(self, **parts):
        """Keeps this transformation's own copies (`owned`) of the box filters and image
        validators given, as attributes of those names, following its labels_format.
        Call it before `LabelsFormat.__init__`."""
        for name, part in parts.items():
            setattr(self, name, owned(part))
        self._children = [getattr(self, name) for name in parts if getattr(self, name) is not None]

    @property
    def x_columns(self):
        """The columns of the x coordinates (xmin, xmax)."""
        return [self._labels_format["xmin"], self._labels_format["xmax"]]

    @property
    def y_columns(self):
        """The columns of the y coordinates (ymin, ymax)."""
        return [self._labels_format["ymin"], self._labels_format["ymax"]]


class RandomApply:
    """Mixin: ``prob`` and ``rng``; applies with probability `prob` (original semantics:
    apply if ``uniform(0, 1) >= 1 - prob``)."""

    def __init__(self, prob, rng):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"Expected 0 <= prob <= 1. Received: prob={prob}")
        self.prob = prob
        self.rng = as_rng(rng)

    def should_apply(self):
        """Draws whether this call applies the transformation (with probability `prob`)."""
        return self.rng.uniform(0.0, 1.0) >= 1.0 - self.prob


def result(image, labels, inverter=None, return_inverter=False):
    """``image`` / ``(image, labels)``, with the inverter appended if asked for."""
    out = (image,) if labels is None else (image, labels)
    if return_inverter:
        out += (inverter,)
    return out[0] if len(out) == 1 else out


def failed_result(had_labels, return_inverter):
    """What a transformation that gives up returns: None for the image, the labels and
    the inverter, in the shape of a normal result."""
    out = (None, None) if had_labels else (None,)
    out += (None,) if return_inverter else ()
    return out[0] if len(out) == 1 else out


def prediction_columns(labels_format):
    """Columns of xmin, ymin, xmax, ymax in decoded predictions ``[class_id, confidence, ...]``:
    the label columns shifted by one for the confidence column (as the original assumed)."""
    return [labels_format[k] + 1 for k in ("xmin", "ymin", "xmax", "ymax")]


def accepts_inverter(transform):
    """Whether `transform` can return an inverter (has a `return_inverter` argument)."""
    import inspect

    try:
        return "return_inverter" in inspect.signature(transform).parameters
    except (TypeError, ValueError):
        return False


def run_sequence(transforms, image, labels, return_inverter):
    """Applies `transforms` in order.

    Returns ``(image, labels, inverters)``; `inverters` lists, in the order to apply
    them, the inverters of the transforms that provide one (last transform first).
    `image` is None if a transform failed (returned None); the rest is then skipped.
    """
    inverters = []
    for transform in transforms:
        if return_inverter and accepts_inverter(transform):
            out = transform(image, labels, return_inverter=True)
            inverters.append(out[-1])
            out = out[:-1]
            out = out[0] if len(out) == 1 else out
        else:
            out = transform(image, labels)
        if labels is None:
            image = out
        else:
            image, labels = out
        if image is None:
            return None, None, []
    return image, labels, inverters[::-1]


class TransformChain(LabelsFormat):
    """A fixed list of transformations, itself a transformation (with inverter).

    Subclasses set `self.sequence`, or `self.sequences` and `self.rng`: then one of
    the sequences is chosen at random on each call (uniformly).
    """

    sequence = None
    sequences = None

    def _all_transforms(self):
        sequences = self.sequences if self.sequences is not None else [self.sequence]
        return [t for sequence in sequences for t in sequence]

    @property
    def labels_format(self):
        """The labels format of the chain, set on every step when assigned."""
        return self._labels_format

    @labels_format.setter
    def labels_format(self, labels_format):
        """The labels format of the chain, set on every step when assigned."""
        LabelsFormat.labels_format.fset(self, labels_format)
        if self.sequence is not None or self.sequences is not None:
            for transform in self._all_transforms():
                if hasattr(transform, "labels_format"):
                    transform.labels_format = self._labels_format

    def __call__(self, image, labels=None, return_inverter=False):
        sequence = self.sequence
        if self.sequences is not None:
            sequence = self.sequences[self.rng.integers(len(self.sequences))]
        had_labels = labels is not None
        image, labels, inverters = run_sequence(sequence, image, copy_labels(labels), return_inverter)

        def inverter(predictions):
            for invert in inverters:
                if invert is not None:
                    predictions = invert(predictions)
            return predictions

        if image is None:
            return failed_result(had_labels, return_inverter)
        return result(image, labels, inverter, return_inverter)

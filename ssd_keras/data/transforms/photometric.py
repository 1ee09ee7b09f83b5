"""Photometric transformations: colour spaces, data types, brightness, contrast,
saturation, hue, gamma, histogram equalization, channel order.

Every one is called ``op(image, labels=None)`` and returns ``image`` or ``(image,
labels)``; labels pass through unchanged. Images are HxWxC arrays; the value ranges
are those of OpenCV: uint8 or float in [0, 255], and hue in [0, 180) for HSV images
converted from uint8 (see `ConvertColor`).
"""

import cv2
import numpy as np

from ssd_keras.data.transforms.base import RandomApply, result

_CONVERSIONS = {
    ("RGB", "HSV"): [cv2.COLOR_RGB2HSV],
    ("HSV", "RGB"): [cv2.COLOR_HSV2RGB],
    ("RGB", "GRAY"): [cv2.COLOR_RGB2GRAY],
    ("HSV", "GRAY"): [cv2.COLOR_HSV2RGB, cv2.COLOR_RGB2GRAY],
}


class ConvertColor:
    """Converts between RGB, HSV and GRAY (to GRAY: optionally keeping 3 identical channels).

    Raises:
        NotImplementedError: for a conversion other than RGB<->HSV, RGB->GRAY, HSV->GRAY.
    """

    def __init__(self, current="RGB", to="HSV", keep_3ch=True):
        if (current, to) not in _CONVERSIONS:
            raise NotImplementedError(
                f"Conversion from {current} to {to} is not supported; supported: {sorted(_CONVERSIONS)}"
            )
        self.current = current
        self.to = to
        self.keep_3ch = keep_3ch

    def __call__(self, image, labels=None):
        for code in _CONVERSIONS[(self.current, self.to)]:
            image = cv2.cvtColor(image, code)
        if self.to == "GRAY" and self.keep_3ch:
            image = np.stack([image] * 3, axis=-1)
        return result(image, labels)


class ConvertDataType:
    """Converts to 'uint8' (rounded) or 'float32'."""

    def __init__(self, to="uint8"):
        if to not in ("uint8", "float32"):
            raise ValueError(f"Expected `to` to be one of {{'uint8', 'float32'}}. Received: to={to!r}")
        self.to = to

    def __call__(self, image, labels=None):
        if self.to == "uint8":
            image = np.round(np.clip(image, 0, 255)).astype(np.uint8)
        else:
            image = image.astype(np.float32)
        return result(image, labels)


class ConvertTo3Channels:
    """Grayscale (HxW or HxWx1) to 3 identical channels; RGBA to RGB."""

    def __call__(self, image, labels=None):
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        elif image.shape[2] == 1:
            image = np.concatenate([image] * 3, axis=-1)
        elif image.shape[2] == 4:
            image = image[:, :, :3]
        return result(image, labels)


class Hue:
    """Shifts the hue of a float HSV image: ``H = (H + delta) mod 180`` (OpenCV units)."""

    def __init__(self, delta):
        if not -180 <= delta <= 180:
            raise ValueError(f"Expected -180 <= delta <= 180. Received: delta={delta}")
        self.delta = delta

    def __call__(self, image, labels=None):
        image = np.array(image, copy=True)
        image[:, :, 0] = (image[:, :, 0] + self.delta) % 180.0
        return result(image, labels)


class Saturation:
    """Scales the saturation of a float HSV image: ``S = clip(S * factor, 0, 255)``."""

    def __init__(self, factor):
        if factor <= 0:
            raise ValueError(f"Expected factor > 0. Received: factor={factor}")
        self.factor = factor

    def __call__(self, image, labels=None):
        image = np.array(image, copy=True)
        image[:, :, 1] = np.clip(image[:, :, 1] * self.factor, 0, 255)
        return result(image, labels)


class Brightness:
    """Adds `delta` to every value of a float image: ``clip(image + delta, 0, 255)``."""

    def __init__(self, delta):
        self.delta = delta

    def __call__(self, image, labels=None):
        return result(np.clip(image + self.delta, 0, 255), labels)


class Contrast:
    """Scales a float image about mid-grey: ``clip(127.5 + factor * (image - 127.5), 0, 255)``."""

    def __init__(self, factor):
        if factor <= 0:
            raise ValueError(f"Expected factor > 0. Received: factor={factor}")
        self.factor = factor

    def __call__(self, image, labels=None):
        return result(np.clip(127.5 + self.factor * (image - 127.5), 0, 255), labels)


class Gamma:
    """Gamma correction of a uint8 image through a lookup table: ``255 * (i / 255) ** (1 / gamma)``.

    (The original's `__call__` referred to an undefined name and always failed.)
    """

    def __init__(self, gamma):
        if gamma <= 0:
            raise ValueError(f"Expected gamma > 0. Received: gamma={gamma}")
        self.gamma = gamma
        self.table = np.round(((np.arange(256) / 255.0) ** (1.0 / gamma)) * 255).astype(np.uint8)

    def __call__(self, image, labels=None):
        return result(cv2.LUT(np.asarray(image, dtype=np.uint8), self.table), labels)


class HistogramEqualization:
    """Equalizes the histogram of channel 2 (V of a uint8 HSV image)."""

    def __call__(self, image, labels=None):
        image = np.array(image, copy=True)
        image[:, :, 2] = cv2.equalizeHist(np.ascontiguousarray(image[:, :, 2]))
        return result(image, labels)


class ChannelSwap:
    """Reorders the channels: output channel i is input channel ``order[i]``."""

    def __init__(self, order):
        self.order = tuple(order)

    def __call__(self, image, labels=None):
        return result(image[:, :, self.order], labels)


class _RandomParameter(RandomApply):
    """Base of the random photometric ops: with probability `prob`, apply `make(value)`
    with a value drawn uniformly from [lower, upper]."""

    make = None

    def __init__(self, lower, upper, prob, rng):
        if lower > upper:
            raise ValueError(f"Expected lower <= upper. Received: lower={lower}, upper={upper}")
        super().__init__(prob, rng)
        self.lower = lower
        self.upper = upper

    def __call__(self, image, labels=None):
        if self.should_apply():
            return type(self).make(self.rng.uniform(self.lower, self.upper))(image, labels)
        return result(image, labels)


# The Random* classes below differ only in the operation they draw and their defaults
# (the original's); `_RandomParameter` holds what they share.
class RandomBrightness(_RandomParameter):
    """`Brightness` with a delta uniform in [lower, upper], with probability `prob`."""

    make = Brightness

    def __init__(self, lower=-84, upper=84, prob=0.5, rng=None):
        super().__init__(lower, upper, prob, rng)


class RandomContrast(_RandomParameter):
    """`Contrast` with a factor uniform in [lower, upper], with probability `prob`."""

    make = Contrast

    def __init__(self, lower=0.5, upper=1.5, prob=0.5, rng=None):
        super().__init__(lower, upper, prob, rng)


class RandomSaturation(_RandomParameter):
    """`Saturation` with a factor uniform in [lower, upper], with probability `prob`."""

    make = Saturation

    def __init__(self, lower=0.3, upper=2.0, prob=0.5, rng=None):
        super().__init__(lower, upper, prob, rng)


class RandomGamma(_RandomParameter):
    """`Gamma` with a gamma uniform in [lower, upper], with probability `prob`."""

    make = Gamma

    def __init__(self, lower=0.25, upper=2.0, prob=0.5, rng=None):
        super().__init__(lower, upper, prob, rng)


class RandomHue(_RandomParameter):
    """`Hue` with a delta uniform in [-max_delta, max_delta], with probability `prob`."""

    make = Hue

    def __init__(self, max_delta=18, prob=0.5, rng=None):
        if not 0 <= max_delta <= 180:
            raise ValueError(f"Expected 0 <= max_delta <= 180. Received: max_delta={max_delta}")
        super().__init__(-max_delta, max_delta, prob, rng)
        self.max_delta = max_delta


class RandomHistogramEqualization(RandomApply):
    """`HistogramEqualization` with probability `prob`."""

    def __init__(self, prob=0.5, rng=None):
        super().__init__(prob, rng)
        self.equalize = HistogramEqualization()

    def __call__(self, image, labels=None):
        return self.equalize(image, labels) if self.should_apply() else result(image, labels)


class RandomChannelSwap(RandomApply):
    """With probability `prob`, one of the five non-identity orders of 3 channels."""

    PERMUTATIONS = ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))

    def __init__(self, prob=0.5, rng=None):
        super().__init__(prob, rng)

    def __call__(self, image, labels=None):
        if self.should_apply():
            order = self.PERMUTATIONS[self.rng.integers(len(self.PERMUTATIONS))]
            return ChannelSwap(order)(image, labels)
        return result(image, labels)


def _table(values):
    """A uint8 lookup table from float32 values of the 256 inputs (rounded, as ConvertDataType)."""
    return np.round(np.clip(values, 0, 255)).astype(np.uint8)


class PhotometricDistortions(RandomApply):
    """The photometric part of the augmentation chains, fused into lookup tables.

    Exactly the chain ``ConvertTo3Channels, float32, RandomBrightness, RandomContrast,
    uint8, RGB->HSV, float32, RandomSaturation, RandomHue, uint8, HSV->RGB`` (or, with
    equal chance, the same with the contrast step after HSV->RGB), optionally followed
    by `RandomChannelSwap`: every step between two uint8 conversions acts on each
    value alone, so it is a 256-entry table applied with `cv2.LUT`, several times
    faster than floating-point image arithmetic. Skips the HSV round trip when neither
    saturation nor hue changes (the round trip alone alters some pixels by rounding).

    Args:
        brightness, contrast, saturation: ``(lower, upper, prob)``.
        hue: ``(max_delta, prob)``.
        channel_swap_prob: probability of a random channel order; None for no step.
        rng: seed or `numpy.random.Generator`.

    Call arguments:
        image: HxW(x1|3|4) image; non-uint8 images are rounded to uint8 first.
        labels: passed through.
    """

    def __init__(
        self,
        brightness=(-32, 32, 0.5),
        contrast=(0.5, 1.5, 0.5),
        saturation=(0.5, 1.5, 0.5),
        hue=(18, 0.5),
        channel_swap_prob=None,
        rng=None,
    ):
        super().__init__(1.0, rng)
        self.random_brightness = RandomBrightness(*brightness, rng=self.rng)
        self.random_contrast = RandomContrast(*contrast, rng=self.rng)
        self.random_saturation = RandomSaturation(*saturation, rng=self.rng)
        self.random_hue = RandomHue(*hue, rng=self.rng)
        self.channel_swap = None if channel_swap_prob is None else RandomChannelSwap(channel_swap_prob, rng=self.rng)

    def _draw(self, op):
        """The drawn parameter of a random op, or None if it is not applied this time."""
        return op.rng.uniform(op.lower, op.upper) if op.should_apply() else None

    def __call__(self, image, labels=None):
        image = ConvertTo3Channels()(image)
        if image.dtype != np.uint8:
            image = ConvertDataType("uint8")(image)
        contrast_first = self.rng.integers(2) == 0
        brightness = self._draw(self.random_brightness)
        contrast = self._draw(self.random_contrast) if contrast_first else None
        saturation = self._draw(self.random_saturation)
        hue = self._draw(self.random_hue)
        if not contrast_first:
            contrast = self._draw(self.random_contrast)
        values = np.arange(256, dtype=np.float32)
        before = values if brightness is None else np.clip(values + np.float32(brightness), 0, 255)
        if contrast_first and contrast is not None:
            before = np.clip(127.5 + np.float32(contrast) * (before - 127.5), 0, 255)
        if brightness is not None or (contrast_first and contrast is not None):
            image = cv2.LUT(image, _table(before))
        if saturation is not None or hue is not None:
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
            h = values if hue is None else (values + np.float32(hue)) % 180.0
            s = values if saturation is None else np.clip(values * np.float32(saturation), 0, 255)
            tables = np.stack([_table(h), _table(s), _table(values)], axis=-1).reshape(256, 1, 3)
            image = cv2.cvtColor(cv2.LUT(hsv, tables), cv2.COLOR_HSV2RGB)
        if not contrast_first and contrast is not None:
            image = cv2.LUT(image, _table(np.clip(127.5 + np.float32(contrast) * (values - 127.5), 0, 255)))
        if self.channel_swap is not None:
            image = self.channel_swap(image)
        return result(image, labels)

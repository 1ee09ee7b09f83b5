"""The transformations of images and their boxes, each a callable ``op(image, labels)``.

Modules: `geometric` (resize, flip, translate, scale, rotate), `photometric` (colour
spaces, brightness, contrast, hue, ...), `patch_sampling` (crops and pads, the random
patches of SSD's augmentation), `validation` (`BoxFilter`, `ImageValidator`,
`BoundGenerator`), `inverse` (`apply_inverse_transforms`: detections back to the original
image), `base` (what they share: labels formats, random application, chains).
"""

"""Random generators shared by the data pipeline and the weight tools.

`as_rng` turns the ``rng=`` argument every random function of this project takes (None,
an int seed or a `numpy.random.Generator`) into a Generator; `reseed_generators` gives
every Generator held inside an object (a transformation, a chain) a new stream derived
from a seed, which is how `DataGenerator.keras_dataset` makes each batch's augmentation
depend on its number only. Neither imports anything of the project.
"""

import numpy as np


def as_rng(rng):
    """A `numpy.random.Generator` from None (OS entropy), an int seed or a Generator.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"Expected `rng` to be None, an int seed or a numpy.random.Generator. Received: rng={rng!r}")


def reseed_generators(obj, seed):
    """Gives every `numpy.random.Generator` inside `obj` (followed through lists, tuples
    and attributes) a new stream derived from `seed`, an int or a tuple of ints.

    The generators are reseeded in a fixed order (by identity, which is stable for
    one object), the k-th from ``seed + (k,)``.
    """
    seed = list(seed) if isinstance(seed, (tuple, list)) else [seed]
    seen = set()
    stack = [obj]
    generators = []
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.random.Generator):
            generators.append(item)
            continue
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.extend(vars(item).values())
    for k, generator in enumerate(sorted(generators, key=id)):
        generator.bit_generator.state = np.random.default_rng(seed + [k]).bit_generator.state

"""`apply_inverse_transforms`: maps decoded predictions back through the inverters
that `DataGenerator.generate(returns={..., 'inverse_transform'})` collected."""

import numpy as np


def apply_inverse_transforms(y_pred_decoded, inverse_transforms):
    """Applies each image's inverters, in order, to its predictions.

    Args:
        y_pred_decoded: list (or array) with one array of decoded predictions
            ``[class_id, confidence, xmin, ymin, xmax, ymax]`` per image.
        inverse_transforms: per image, the list of inverters (None entries are skipped).

    Returns:
        the same structure, with new arrays (the input is not changed).

    Raises:
        ValueError: if the two lists have different lengths.
    """
    if len(y_pred_decoded) != len(inverse_transforms):
        raise ValueError(
            f"Got predictions for {len(y_pred_decoded)} images but inverters for {len(inverse_transforms)}."
        )
    out = []
    for predictions, inverters in zip(y_pred_decoded, inverse_transforms):
        predictions = np.array(predictions, dtype=np.float64, copy=True)
        if predictions.size:
            for inverter in inverters or ():
                if inverter is not None:
                    predictions = inverter(predictions)
        out.append(predictions)
    if not isinstance(y_pred_decoded, np.ndarray):
        return out
    if y_pred_decoded.dtype != object:
        return np.stack(out)  # e.g. the (batch, top_k, 6) output of an inference-mode model
    ragged = np.empty(len(out), dtype=object)
    ragged[:] = out
    return ragged

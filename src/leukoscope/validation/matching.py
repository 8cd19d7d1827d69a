"""One-to-one matching of labelled points to detections: nearest pairs first, within a radius."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RADIUS_UM = 6.0
"""Match radius: about a white cell's radius, so a label anywhere on the cell finds its nucleus."""


def match_points(
    labels_yx: Sequence[tuple[float, float]],
    detections_yx: Sequence[tuple[float, float]],
    radius_px: float,
) -> list[tuple[int, int]]:
    """Pairs (label index, detection index), each used at most once, the closest pairs first.

    Only pairs at most `radius_px` apart are considered; ties are broken by label then detection
    index, so the result does not depend on anything but the input order.
    """
    if not labels_yx or not detections_yx:
        return []
    a = np.asarray(labels_yx, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(detections_yx, dtype=np.float64).reshape(-1, 2)
    distance = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    rows, cols = np.nonzero(distance <= radius_px)
    order = np.lexsort((cols, rows, distance[rows, cols]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for k in order:
        i, j = int(rows[k]), int(cols[k])
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return sorted(pairs)

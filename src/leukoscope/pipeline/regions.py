"""Candidate regions of a fluorescence field: the watershed split of touching cells, how many
regions a field splits into, and the lobe merge (steps 3 and 4 of segmentation.py).

The merge is greedy: the pair of neighbouring regions whose union is the most compact is merged
first, while the union fits (`merge_lobes`). Only pairs whose centroids lie close enough can fit, so
the pairs are found through a grid of cells as wide as that distance, their unions' extents are kept
in a heap, and after a merge only the merged region's pairs are measured again. With regions spread
over a field (each has a bounded number of neighbours), the work grows as n log n in the number of
regions n; `MergeStats` counts it. Ties are broken as a scan over the regions in their original
order would break them, and every extent is computed from the same pixels in the same order, so
the result is the same as re-scanning every pair after each merge.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from leukoscope.pipeline import budget

CHECK_EVERY = 1024
"""Pair measurements between two looks at the unit's budget."""


def flood(height: np.ndarray, seeds: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Marker-controlled watershed (Meyer's priority flood) of `inside`, from the brightest ground
    down: each pixel joins the seed that reaches it over the highest path. Small windows only."""
    labels = np.where(inside, seeds, 0).astype(np.int32)
    rows, cols = labels.shape
    queue: list[tuple[float, int, int, int]] = []
    order = 0
    for y, x in zip(*np.nonzero(labels), strict=True):
        heapq.heappush(queue, (-float(height[y, x]), order, int(y), int(x)))
        order += 1
    popped = 0
    while queue:
        _, _, y, x = heapq.heappop(queue)
        popped += 1
        if popped % 8192 == 0:
            budget.check("splitting touching cells")
        label = labels[y, x]
        for dy, dx in _NEIGHBOURS:
            ny, nx = y + dy, x + dx
            if 0 <= ny < rows and 0 <= nx < cols and inside[ny, nx] and not labels[ny, nx]:
                labels[ny, nx] = label
                heapq.heappush(queue, (-float(height[ny, nx]), order, ny, nx))
                order += 1
    return labels


_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def seed_count(parts: np.ndarray, n_parts: int, peaks: np.ndarray) -> int:
    """How many regions the parts split into: each part holds max(1, its markers)."""
    seeds, n_seeds = ndimage.label(peaks, structure=np.ones((3, 3)))
    ys, xs = np.nonzero(peaks)
    owned = np.unique(parts[ys, xs].astype(np.int64) * (n_seeds + 1) + seeds[ys, xs])
    per_part = np.bincount(owned // (n_seeds + 1), minlength=n_parts)[1:]
    return int(np.maximum(per_part, 1).sum())


def pieces(flooded: np.ndarray, n_seeds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The pixels (row-major) of each label 1..n_seeds of a flooded window, in one pass."""
    ys, xs = np.nonzero(flooded)
    labels = flooded[ys, xs]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(1, n_seeds + 2))
    return [(ys[order[a:b]], xs[order[a:b]]) for a, b in itertools.pairwise(bounds)]


@dataclass
class Region:
    """Pixels of one candidate region (working-image coordinates) and their weights."""

    ys: np.ndarray
    xs: np.ndarray
    weights: np.ndarray

    def merged(self, other: Region) -> Region:
        """This region's pixels, then `other`'s."""
        return Region(
            np.concatenate([self.ys, other.ys]),
            np.concatenate([self.xs, other.xs]),
            np.concatenate([self.weights, other.weights]),
        )

    @property
    def centroid(self) -> tuple[float, float]:
        """Intensity-weighted centroid (the plain mean when the weights are all zero)."""
        w = self.weights
        total = float(w.sum())
        if total <= 0:
            return float(self.ys.mean()), float(self.xs.mean())
        return float((self.ys * w).sum() / total), float((self.xs * w).sum() / total)

    @property
    def extent(self) -> float:
        """Largest distance of a pixel from the centroid, plus half a pixel."""
        cy, cx = self.centroid
        return float(np.sqrt((self.ys - cy) ** 2 + (self.xs - cx) ** 2).max()) + 0.5


def cut_by_border(
    region: Region, core: np.ndarray, shape: tuple[int, int], min_chord: float, share: float
) -> bool:
    """Whether the border cuts through the `core` pixels of `region` (a nucleus, not its blur).

    Cut: along one side of the image the core lies on the outermost row or column over at least
    `min_chord` pixels and over at least `share` of its own width along that side. A nucleus that
    touches the border only near its tip (a round one then loses under 5 % of its area at share
    0.6) is whole enough to count; one cut near its widest part is not.
    """
    ys, xs = region.ys[core], region.xs[core]
    if ys.size == 0:
        return False
    height, width = shape
    for on_edge, along in (
        (ys <= 0, xs),
        (ys >= height - 1, xs),
        (xs <= 0, ys),
        (xs >= width - 1, ys),
    ):
        chord = int(on_edge.sum())
        if chord and chord >= min_chord and chord >= share * (float(along.max() - along.min()) + 1):
            return True
    return False


@dataclass
class MergeStats:
    """The work one merge did: pairs looked at, unions measured, merges made."""

    pairs: int = 0
    measured: int = 0
    merges: int = 0


_Cell = tuple[int, int]


class _Grid:
    """Region keys by grid cell: the neighbours of a point are in its cell and the eight around."""

    def __init__(self, side: float) -> None:
        self.side = side
        self.cells: dict[_Cell, set[int]] = {}

    def cell(self, point: tuple[float, float]) -> _Cell:
        return math.floor(point[0] / self.side), math.floor(point[1] / self.side)

    def add(self, key: int, cell: _Cell) -> None:
        self.cells.setdefault(cell, set()).add(key)

    def remove(self, key: int, cell: _Cell) -> None:
        keys = self.cells[cell]
        keys.discard(key)
        if not keys:
            del self.cells[cell]

    def near(self, cell: _Cell) -> list[int]:
        y, x = cell
        return [
            k
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            for k in self.cells.get((y + dy, x + dx), ())
        ]


@dataclass(frozen=True)
class _Sums:
    """What a cheap lower bound on a union's extent needs: weight and coordinate sums, box."""

    weight: float
    wy: float
    wx: float
    count: int
    y: float
    x: float
    box: tuple[float, float, float, float]  # y min, y max, x min, x max

    @classmethod
    def of(cls, r: Region) -> _Sums:
        w = r.weights
        box = (float(r.ys.min()), float(r.ys.max()), float(r.xs.min()), float(r.xs.max()))
        return cls(
            float(w.sum()), float((r.ys * w).sum()), float((r.xs * w).sum()), int(r.ys.size),
            float(r.ys.sum()), float(r.xs.sum()), box,
        )  # fmt: skip

    def __add__(self, other: _Sums) -> _Sums:
        a, b = self.box, other.box
        return _Sums(
            self.weight + other.weight, self.wy + other.wy, self.wx + other.wx,
            self.count + other.count, self.y + other.y, self.x + other.x,
            (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])),
        )  # fmt: skip

    def least_extent(self) -> float:
        """A lower bound of the extent (up to rounding): each side of the box holds a pixel."""
        if self.weight > 0:
            cy, cx = self.wy / self.weight, self.wx / self.weight
        else:
            cy, cx = self.y / self.count, self.x / self.count
        y0, y1, x0, x1 = self.box
        return max(cy - y0, y1 - cy, cx - x0, x1 - cx) + 0.5


def _pixels_fit(count: int, radius: float) -> bool:
    """Whether `count` distinct pixels can lie within `radius` of one point (each pixel's unit
    square then lies within radius + sqrt(2)/2 of it)."""
    return count <= math.pi * (radius + 0.7072) ** 2 + 1.0


def merge_lobes(
    regions: list[Region],
    max_extent: float,
    cell_extent: float,
    lobe_px: float,
    stats: MergeStats | None = None,
    check: Callable[[str], None] = budget.check,
) -> list[Region]:
    """Greedily merge the pair whose union is the most compact, while it fits `max_extent`; up to
    `cell_extent`, a pair also merges when one of them is smaller than `lobe_px` pixels (a lobe or
    a fragment of a nucleus, not a whole one). Regions keep their order (a merged region takes the
    place of the first of its two). `check` is called between pieces of work (the unit's budget)."""
    stats = stats if stats is not None else MergeStats()
    reach = max(max_extent, cell_extent)
    alive: dict[int, Region] = dict(enumerate(regions))
    centres = {k: r.centroid for k, r in alive.items()}
    sums = {k: _Sums.of(r) for k, r in alive.items()}
    generation = dict.fromkeys(alive, 0)
    grid = _Grid(2 * reach + 1.0)  # a little wider than the farthest pair that may fit
    cells = {k: grid.cell(c) for k, c in centres.items()}
    for key, cell in cells.items():
        grid.add(key, cell)
    heap: list[tuple[float, int, int, int, int]] = []

    def measure(i: int, j: int) -> None:
        """Push the pair (i < j) when its union fits."""
        stats.pairs += 1
        if stats.pairs % CHECK_EVERY == 0:
            check("merging lobes")
        distance = math.dist(centres[i], centres[j])
        if distance > 2 * reach:
            return  # both centroids must lie within reach of the union's
        first, second = alive[i], alive[j]
        small = min(first.ys.size, second.ys.size) < lobe_px
        limit = max(max_extent, cell_extent) if small else max_extent
        # pairs that cannot fit are not measured (bounds exact up to rounding): the union's extent
        # is at least half the centroids' distance, its pixels must fit in a disc of that extent,
        # and each side of its box holds a pixel
        if distance / 2 + 0.5 > limit + 1e-6:
            return
        union = sums[i] + sums[j]
        if not _pixels_fit(union.count, limit - 0.5 + 1e-6) or union.least_extent() > limit + 1e-6:
            return
        stats.measured += 1
        extent = first.merged(second).extent
        if extent <= max_extent or (small and extent <= cell_extent):
            heapq.heappush(heap, (extent, i, j, generation[i], generation[j]))

    ys = np.array([c[0] for c in centres.values()], dtype=np.float64)
    xs = np.array([c[1] for c in centres.values()], dtype=np.float64)

    def pairs_of(key: int, others: list[int]) -> None:
        """Measure `key` with the `others` near enough (a vector test first, then exactly)."""
        near = np.asarray(others, dtype=np.intp)
        close = np.hypot(ys[near] - ys[key], xs[near] - xs[key]) <= 2 * reach + 1e-6
        for other in near[close].tolist():
            if other != key:
                measure(min(key, other), max(key, other))

    for key in sorted(alive):
        pairs_of(key, [k for k in grid.near(cells[key]) if k > key])
    while heap:
        _, i, j, gen_i, gen_j = heapq.heappop(heap)
        if i not in alive or j not in alive or generation[i] != gen_i or generation[j] != gen_j:
            continue  # a pair of a region that has changed or gone since
        stats.merges += 1
        alive[i] = alive[i].merged(alive.pop(j))
        sums[i] = sums[i] + sums.pop(j)
        generation[i] += 1
        grid.remove(j, cells.pop(j))
        grid.remove(i, cells[i])
        centres.pop(j)
        centres[i] = alive[i].centroid
        ys[i], xs[i] = centres[i]
        cells[i] = grid.cell(centres[i])
        grid.add(i, cells[i])
        pairs_of(i, grid.near(cells[i]))
    return [alive[k] for k in sorted(alive)]

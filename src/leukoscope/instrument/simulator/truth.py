"""Ground truth of the simulated sample: white-cell shapes, positions and classes per field of view."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from leukoscope.types import CellClass


@dataclass(frozen=True)
class Lobe:
    """One nuclear lobe: an ellipse relative to the cell centre, px."""

    dy: float
    dx: float
    ry: float
    rx: float
    angle: float  # radians


@dataclass(frozen=True, eq=False)
class WhiteCellShape:
    """Everything the renderer needs to draw one white cell (lengths in px, relative to its centre)."""

    cell_class: CellClass
    radius_px: float
    aspect: float  # long axis / short axis of the cell outline
    angle: float  # orientation of the long axis, radians
    harmonics: tuple[tuple[float, float], ...]  # (relative amplitude, phase) for k = 2, 3, ...
    lobes: tuple[Lobe, ...]
    notch: tuple[float, float, float] | None  # (dy, dx, r) cut out of the nucleus (kidney shape)
    nucleus_density: float  # chromatin stain, relative
    chromatin_contrast: float  # 0 smooth .. 1 coarse clumps
    cytoplasm_pink: float  # eosinophilic / neutrophilic cytoplasm, relative
    cytoplasm_rna: float  # basophilic (RNA-rich) cytoplasm, relative
    granules: np.ndarray = field(repr=False)  # (n, 3): dy, dx, radius
    granule_kind: str = "none"  # "neu" fine, "eos" coarse orange, "bas" dark, "azur", "none"
    vacuoles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)
    stain: float = 1.0  # per-cell staining intensity
    lobe_count: int = 1  # nuclear lobes as a haematologist counts them (a band is 1)
    defocus_px: float = 0.0  # extra blur sigma: how far this cell lies from the focal plane
    lookalike: CellClass | None = None  # the class this cell's look was moved toward (lookalike.py)
    lookalike_weight: float = 0.0  # how far: 0 its own class's look .. 1 the look-alike's
    nucleoli: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)  # dy, dx, r
    stage: str = ""  # maturation stage of a cell outside the five (atypical.py), e.g. "myelocyte"

    def lookalike_json(self) -> dict[str, object]:
        """The look-alike fields of a ground-truth record; empty for a cell that looks its class."""
        if self.lookalike is None:
            return {}
        return {"resembles": self.lookalike.value, "resemblance": round(self.lookalike_weight, 3)}

    def outline_radius(self, theta: np.ndarray) -> np.ndarray:
        """Radius of the cell outline at polar angle `theta` (radians), px."""
        t = theta - self.angle
        stretch = math.sqrt(self.aspect)
        base = 1.0 / np.sqrt((np.cos(t) / stretch) ** 2 + (np.sin(t) * stretch) ** 2)
        wobble = np.ones_like(theta)
        for k, (amp, phase) in enumerate(self.harmonics, start=2):
            wobble = wobble + amp * np.cos(k * theta + phase)
        return np.asarray(self.radius_px * base * wobble)

    def outline(self, points: int = 32) -> np.ndarray:
        """Polygon of the cell outline relative to its centre, (points, 2) as (dy, dx)."""
        theta = np.linspace(0.0, 2.0 * math.pi, points, endpoint=False)
        r = self.outline_radius(theta)
        return np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)

    @property
    def extent_px(self) -> float:
        """Largest distance of the outline from the centre, px (bounds the drawing patch)."""
        return float(self.outline_radius(np.linspace(0, 2 * math.pi, 64)).max())


@dataclass(frozen=True)
class WhiteCell:
    """One white cell in a field of view, in frame coordinates of the reference modality (color1)."""

    index: int
    cell_class: CellClass
    centre_yx: tuple[float, float]
    shape: WhiteCellShape
    bbox: tuple[int, int, int, int]  # x, y, width, height (clipped to the frame)
    cut_by_border: bool

    @property
    def radius_px(self) -> float:
        """Mean radius of the cell, px."""
        return self.shape.radius_px

    def to_json(self, fov: int) -> dict[str, object]:
        """The ground-truth record written to ground_truth.json."""
        outline = self.shape.outline(24) + np.asarray(self.centre_yx)
        return {
            "field": fov,
            "index": self.index,
            "class": self.cell_class.value,
            "centre_yx": [round(self.centre_yx[0], 2), round(self.centre_yx[1], 2)],
            "bbox_xywh": list(self.bbox),
            "radius_px": round(self.shape.radius_px, 2),
            "cut_by_border": self.cut_by_border,
            "lobes": self.shape.lobe_count,
            "granules": int(self.shape.granules.shape[0]),
            **self.shape.lookalike_json(),
            **({"stage": self.shape.stage} if self.shape.stage else {}),
            "outline_yx": np.round(outline, 1).tolist(),
        }


def _located(
    fov: int, index: int, centre_yx: tuple[float, float], radius_px: float
) -> dict[str, object]:
    """The part every ground-truth record of a small object shares: where it is and how big."""
    return {
        "field": fov,
        "index": index,
        "centre_yx": [round(centre_yx[0], 2), round(centre_yx[1], 2)],
        "radius_px": round(radius_px, 2),
    }


@dataclass(frozen=True)
class Platelet:
    """One platelet in a field of view, frame coordinates of the reference modality, px."""

    index: int
    centre_yx: tuple[float, float]
    radius_px: float

    def to_json(self, fov: int) -> dict[str, object]:
        """The ground-truth record written to ground_truth.json."""
        return _located(fov, self.index, self.centre_yx, self.radius_px)


@dataclass(frozen=True)
class Debris:
    """A fragment that is not a cell (stain precipitate, red-cell fragment, dust); never counted.

    `blobs` are the overlapping ellipses it is drawn from: (dy, dx, ry, rx, angle), px, relative to
    the centre; `radius_px` bounds them.
    """

    index: int
    centre_yx: tuple[float, float]
    radius_px: float
    kind: str  # "precipitate", "fragment" or "dust"
    darkness: float  # stain/material density of the core, relative
    blobs: tuple[tuple[float, float, float, float, float], ...]

    def to_json(self, fov: int) -> dict[str, object]:
        """The ground-truth record written to ground_truth.json."""
        record = _located(fov, self.index, self.centre_yx, self.radius_px)
        return {**record, "kind": self.kind, "white_cell": False}


@dataclass(frozen=True)
class Smudge:
    """A smudge (basket) cell: the bare chromatin of a ruptured white cell, smeared; never counted.

    `streaks` are elongated Gaussian strands, (dy, dx, sigma_along, sigma_across, angle), px,
    relative to the centre; `strength` is its peak emission relative to an intact nucleus.
    """

    index: int
    centre_yx: tuple[float, float]
    radius_px: float
    strength: float
    streaks: tuple[tuple[float, float, float, float, float], ...]

    def to_json(self, fov: int) -> dict[str, object]:
        """The ground-truth record written to ground_truth.json."""
        record = _located(fov, self.index, self.centre_yx, self.radius_px)
        return {**record, "strength": round(self.strength, 3), "white_cell": False}


@dataclass(frozen=True)
class FieldTruth:
    """What one field of view holds: its white cells and which red-cell background it is cut from."""

    fov: int
    shape: tuple[int, int]
    cells: tuple[WhiteCell, ...]
    canvas: int  # index of the pre-rendered red-cell layer
    canvas_roll: tuple[int, int]  # (dy, dx) wrap-around offset into that layer
    platelets: tuple[Platelet, ...] = ()  # not white cells: never counted
    debris: tuple[Debris, ...] = ()  # not cells: never counted
    smudge: tuple[Smudge, ...] = ()  # ruptured white cells: never counted

"""Noise-free rendering of what each light source shows: the sample through the optics.

A field is a wrap-around window of a pre-rendered red-cell layer (already converted per modality,
blurred and shifted, so per field it is a copy), with each white cell drawn on a small patch, blurred
and shifted the same way, and composited over it (white cells push red cells aside; their soft edge
overlaps neighbours a little), then multiplied by the modality's vignetting.

The result is relative radiance: bright-field transmission (1 = clear glass, centre of the field) or
fluorescence emission (1 = a typical nucleus). `sensor.Sensor` turns it into electrons and counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from leukoscope.instrument.simulator.cellpatch import CellComponents, rasterise
from leukoscope.instrument.simulator.contrast import cell_signal, hemoglobin_absorbance
from leukoscope.instrument.simulator.debris import (
    OverlayPatch,
    rasterise_debris,
)
from leukoscope.instrument.simulator.drift import FieldDrift, field_drift
from leukoscope.instrument.simulator.layer_cache import LayerCache, layer_key
from leukoscope.instrument.simulator.optics import (
    apply_periodic_kernel,
    blur_shift_kernel,
    blur_shift_patch,
    split_offset,
    vignette,
)
from leukoscope.instrument.simulator.params import OpticsParams, SensorParams
from leukoscope.instrument.simulator.platelets import (
    PlateletPatch,
    rasterise_platelet,
)
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.smudge import rasterise_smudge
from leukoscope.instrument.simulator.streams import Stream
from leukoscope.instrument.simulator.truth import WhiteCellShape
from leukoscope.types import MODALITIES, Modality, is_fluorescence

_THREADED_PIXELS = 1 << 20  # fields this large render two modalities at a time
_LAYERS_HELD = 4 * len(MODALITIES)  # red-cell layers kept in memory (4 canvases)

Radiance = dict[Modality, np.ndarray]


def wrap_window(
    layer: np.ndarray,
    top: int,
    left: int,
    shape: tuple[int, int],
    gain: np.ndarray | None = None,
) -> np.ndarray:
    """A new (H, W) array: the window of periodic `layer` at (top, left), wrapping around,
    multiplied by `gain` (H, W) if given (in the same pass)."""
    side_y, side_x = layer.shape
    out = np.empty(shape, np.float32)
    ys = _spans(top % side_y, shape[0], side_y)
    xs = _spans(left % side_x, shape[1], side_x)
    for sy, dy, ny in ys:
        for sx, dx, nx in xs:
            src = layer[sy : sy + ny, sx : sx + nx]
            dst = out[dy : dy + ny, dx : dx + nx]
            if gain is None:
                dst[...] = src
            else:
                np.multiply(src, gain[dy : dy + ny, dx : dx + nx], out=dst)
    return out


def _spans(start: int, length: int, period: int) -> list[tuple[int, int, int]]:
    spans, done = [], 0
    while done < length:
        n = min(length - done, period - start)
        spans.append((start, done, n))
        done += n
        start = 0
    return spans


class FieldRenderer:
    """Renders the fields of `sample` under each light source (noise-free relative radiance)."""

    def __init__(
        self,
        sample: SimulatedSample,
        optics: OpticsParams | None = None,
        sensor: SensorParams | None = None,
        layer_cache: LayerCache | None = None,
    ) -> None:
        self.sample = sample
        self.optics = optics or OpticsParams()
        self.layer_cache = layer_cache  # red-cell layers on disk between runs (None: none)
        self._background = (sensor or SensorParams()).fluorescence_background
        self._layer = lru_cache(maxsize=_LAYERS_HELD)(self._make_layer)
        self._built: dict[tuple[int, Modality], np.ndarray] = {}  # built ahead, not yet asked for
        self._made: set[tuple[int, Modality]] = set()
        self._margin = int(6 + 3 * max(self.optics.sigma(m) for m in MODALITIES))

    @property
    def offsets_px(self) -> dict[Modality, tuple[float, float]]:
        """Ground-truth misregistration: content at sample position p appears at p + offset."""
        return dict(self.optics.offsets_px)

    def _make_layer(self, canvas: int, modality: Modality) -> np.ndarray:
        """Layer `canvas` under `modality`: built ahead, from the disk cache, or built now, with the
        modality's other canvases when they all fit `_LAYERS_HELD` (one blur-and-shift kernel)."""
        self._made.add((canvas, modality))
        layer = self._built.pop((canvas, modality), None)
        if layer is None:
            layer = self._load(canvas, modality)
        if layer is not None:
            return layer
        side = self.sample.canvas_side
        kernel = blur_shift_kernel(
            (side, side), self.optics.sigma(modality), self.optics.offsets_px[modality]
        )
        canvases = self.sample.params.background_canvases
        if canvases * len(MODALITIES) <= _LAYERS_HELD:
            for other in range(canvases):
                key = (other, modality)
                if key in self._made or key in self._built:
                    continue
                if self._load(other, modality) is None:  # else read from disk when asked for
                    self._built[key] = self._build(other, modality, kernel)
        return self._build(canvas, modality, kernel)

    def _layer_key(self, canvas: int, modality: Modality) -> str:
        p = self.sample.params
        fluorescence = is_fluorescence(modality)
        return layer_key(
            {
                "seed": self.sample.seed,
                "canvas": canvas,
                "side": self.sample.canvas_side,
                "rbc_diameter_px": p.um_to_px(p.rbc_diameter_um),
                "rbc_coverage": p.rbc_coverage,
                "modality": modality.value,
                "absorbance": hemoglobin_absorbance(modality),
                "background": self._background if fluorescence else None,
                "sigma": self.optics.sigma(modality),
                "offset": list(self.optics.offsets_px[modality]),
            }
        )

    def _load(self, canvas: int, modality: Modality) -> np.ndarray | None:
        if self.layer_cache is None:
            return None
        side = self.sample.canvas_side
        return self.layer_cache.load(self._layer_key(canvas, modality), (side, side))

    def _build(self, canvas: int, modality: Modality, kernel: np.ndarray) -> np.ndarray:
        hb = self.sample.rbc_canvas(canvas)
        base = np.exp(-hemoglobin_absorbance(modality) * hb).astype(np.float32, copy=False)
        if is_fluorescence(modality):
            base *= np.float32(self._background)
        layer = apply_periodic_kernel(base, kernel)
        if self.layer_cache is not None:
            self.layer_cache.save(self._layer_key(canvas, modality), layer)
        layer.setflags(write=False)
        return layer

    def prepare(self) -> None:
        """Pre-render every red-cell layer for every modality now (else on first use)."""
        for canvas in range(self.sample.params.background_canvases):
            for modality in MODALITIES:
                self._layer(canvas, modality)

    def drift(self, fov: int) -> FieldDrift:
        """How field `fov` is out of focus and lit (its own random stream; ground truth)."""
        o = self.optics
        return field_drift(self.sample.seed, fov, o.focus_drift, o.illumination_drift)

    def field(self, fov: int, modalities: Sequence[Modality] = MODALITIES) -> Radiance:
        """Relative radiance of field `fov` under each of `modalities` (new float32 arrays)."""
        truth = self.sample.field(fov)
        seed = self.sample.seed
        rng = np.random.default_rng([seed, Stream.CELL_TEXTURE, fov])
        cells = [(c.shape, c.centre_yx) for c in truth.cells]
        grains = np.random.default_rng([seed, Stream.PLATELET_TEXTURE, fov])
        platelets = [rasterise_platelet(p, grains) for p in truth.platelets]
        grains = np.random.default_rng([seed, Stream.DEBRIS_TEXTURE, fov])
        overlays = [rasterise_debris(d, grains) for d in truth.debris]
        grains = np.random.default_rng([seed, Stream.SMUDGE_TEXTURE, fov])
        px_per_um = self.sample.params.um_to_px(1.0)
        overlays += [rasterise_smudge(s, grains, px_per_um) for s in truth.smudge]
        return self.compose(
            truth.shape, (0, 0), truth.canvas, truth.canvas_roll, cells, rng, modalities, platelets,
            overlays, self.drift(fov),
        )  # fmt: skip

    def compose(
        self,
        shape: tuple[int, int],
        origin_yx: tuple[int, int],
        canvas: int,
        roll: tuple[int, int],
        cells: Sequence[tuple[WhiteCellShape, tuple[float, float]]],
        rng: np.random.Generator,
        modalities: Sequence[Modality] = MODALITIES,
        platelets: Sequence[PlateletPatch] = (),
        overlays: Sequence[OverlayPatch] = (),
        drift: FieldDrift | None = None,
    ) -> Radiance:
        """Render a `shape` window whose top-left sits at `origin_yx` of the sensor frame.

        `cells` are white-cell shapes with centres in window coordinates; `canvas`/`roll` pick the
        red-cell background; `platelets`, then `overlays` (debris, smudge cells) lie on it, under the
        white cells. `drift` (None: none) blurs and scales the whole window. The origin only matters
        for vignetting.
        """
        components = [rasterise(s, c, rng, self._margin) for s, c in cells]

        def one(modality: Modality) -> np.ndarray:
            image = self._modality(
                modality, shape, origin_yx, canvas, roll, components, platelets, overlays
            )
            if drift is None:
                return image
            return drift.apply(image, modality, self.optics.sigma(modality))

        if shape[0] * shape[1] >= _THREADED_PIXELS:
            with ThreadPoolExecutor(2) as workers:  # cv2 and numpy release the GIL
                images = list(workers.map(one, modalities))
        else:
            images = [one(m) for m in modalities]
        return dict(zip(modalities, images, strict=True))

    def _modality(
        self,
        modality: Modality,
        shape: tuple[int, int],
        origin_yx: tuple[int, int],
        canvas: int,
        roll: tuple[int, int],
        components: Sequence[CellComponents],
        platelets: Sequence[PlateletPatch] = (),
        overlays: Sequence[OverlayPatch] = (),
    ) -> np.ndarray:
        oy, ox = origin_yx
        vig = vignette(self.sample.frame_shape, self.optics.vignetting, modality)
        vig = vig[oy : oy + shape[0], ox : ox + shape[1]]
        image = wrap_window(self._layer(canvas, modality), roll[0], roll[1], shape, vig)
        whole, frac = split_offset(self.optics.offsets_px[modality])
        sigma = self.optics.sigma(modality)
        for plate in platelets:
            alpha = blur_shift_patch(plate.alpha, sigma, frac)
            premult = blur_shift_patch(plate.signal(modality) * plate.alpha, sigma, frac)
            top, left = plate.origin_yx[0] + whole[0], plate.origin_yx[1] + whole[1]
            _composite(image, alpha, premult, top, left, vig)
        for overlay in overlays:
            cover, own = overlay.alpha_premult(modality)
            alpha = blur_shift_patch(cover, sigma, frac)
            premult = blur_shift_patch(own, sigma, frac)
            top, left = overlay.origin_yx[0] + whole[0], overlay.origin_yx[1] + whole[1]
            _composite(image, alpha, premult, top, left, vig)
        for comp in components:
            signal = cell_signal(comp, modality)
            blur = math.hypot(sigma, comp.shape.defocus_px)
            alpha = blur_shift_patch(comp.alpha, blur, frac)
            premult = blur_shift_patch(signal * comp.alpha, blur, frac)
            top, left = comp.origin_yx[0] + whole[0], comp.origin_yx[1] + whole[1]
            _composite(image, alpha, premult, top, left, vig)
        return image


def _composite(
    image: np.ndarray,
    alpha: np.ndarray,
    premult: np.ndarray,
    top: int,
    left: int,
    gain: np.ndarray,
) -> None:
    """image = image * (1 - alpha) + premult * gain over the patch at (top, left), clipped."""
    h, w = alpha.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, image.shape[0]), min(left + w, image.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    a = alpha[y0 - top : y1 - top, x0 - left : x1 - left]
    p = premult[y0 - top : y1 - top, x0 - left : x1 - left]
    region = image[y0:y1, x0:x1]
    region *= 1.0 - a
    region += p * gain[y0:y1, x0:x1]

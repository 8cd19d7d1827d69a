"""Align the frames of one field of view: a per-rig calibrated offset, refined per field.

Convention (as FrameSet.shifts_px): a shift (dy, dx) is what is *applied* to a frame to register it
to the reference modality: `registered[y, x] = frame[y - dy, x - dx]`. If a modality's optics put
sample content at p + o (o its offset, reference offset o_ref), its shift is -(o - o_ref).

Estimation is cross-correlation (partially whitened, Hann window, peak refined to 1/100 px) on
feature images the modalities
share: illumination-flattened intensity between bright-field colours (red cells and white cells look
alike, only contrast differs), and gradient magnitude between bright-field and fluorescence (the red
cells are dark in both, nuclei are dark in one and bright in the other: edges are where both agree).
A field's estimate is used only if it lies within `max_shift_px` of the calibrated offset and the
correlation peak is clear; otherwise the calibrated offset is applied alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy import fft
from threadpoolctl import ThreadpoolController

from leukoscope.config import RegistrationConfig
from leukoscope.errors import ParameterError
from leukoscope.types import MODALITIES, Modality, is_fluorescence

log = logging.getLogger(__name__)

Shift = tuple[float, float]
MAX_CROP = 1024
"""Side of the central window used for estimation, px (speed, and away from vignetted corners)."""
MIN_RESPONSE = 10.0
"""Correlation peak (in standard deviations of the surface) below which an estimate is not trusted."""
WHITEN = 0.5
"""Exponent of the spectral whitening: 0 = plain cross-correlation, 1 = phase correlation."""
UPSAMPLE = 100
"""Sub-pixel resolution of the peak search: 1/UPSAMPLE px."""
BACKGROUND_SIGMA = 12.0
STABLE_PX = 0.1
"""`reuse_stable`: refined shifts this close to their median count as one stable offset."""
NOISE_SIGMA = 1.0
_ONE_BLAS_THREAD = ThreadpoolController()
"""The sub-pixel DFT's matrix products run on one BLAS thread: the same numbers (OpenBLAS splits
the output, not the sums), and no second thread spinning against the pipeline's on a small machine."""


@dataclass(frozen=True)
class ShiftEstimate:
    """A shift to apply to a frame, with the correlation peak height it came from."""

    dy: float
    dx: float
    response: float

    @property
    def shift(self) -> Shift:
        """(dy, dx)."""
        return (self.dy, self.dx)


def _mono(image: np.ndarray) -> np.ndarray:
    data = image.astype(np.float32)
    return data.mean(axis=2) if data.ndim == 3 else data


def _central(image: np.ndarray, side: int = MAX_CROP) -> np.ndarray:
    height, width = image.shape[:2]
    top, left = max((height - side) // 2, 0), max((width - side) // 2, 0)
    return image[top : top + min(side, height), left : left + min(side, width)]


def _flat(image: np.ndarray) -> np.ndarray:
    """The central window, denoised and divided by its illumination (background)."""
    mono = _mono(_central(image))
    flat: np.ndarray = cv2.GaussianBlur(mono, (0, 0), NOISE_SIGMA)
    background = cv2.GaussianBlur(mono, (0, 0), BACKGROUND_SIGMA)
    np.maximum(background, np.float32(1e-3), out=background)
    np.divide(flat, background, out=flat)  # in place: the same numbers, no temporaries
    flat -= np.float32(1.0)
    return flat


def feature_image(
    image: np.ndarray, cross_modal: bool, flat: np.ndarray | None = None
) -> np.ndarray:
    """What registration compares: flattened intensity, or its gradient magnitude (cross-modal).
    `flat`: the image's `_flat` if already computed (the reference serves both kinds)."""
    flat = _flat(image) if flat is None else flat
    if not cross_modal:
        return np.ascontiguousarray(flat, dtype=np.float32)
    gy = cv2.Sobel(flat, cv2.CV_32F, 0, 1, ksize=3)
    gx = cv2.Sobel(flat, cv2.CV_32F, 1, 0, ksize=3)
    magnitude = cv2.magnitude(gx, gy)
    return np.ascontiguousarray(magnitude - magnitude.mean(), dtype=np.float32)


@lru_cache(maxsize=4)
def _hann(shape: tuple[int, int]) -> np.ndarray:
    window = np.asarray(cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F))
    window.setflags(write=False)
    return window


def _spectrum(feature: np.ndarray) -> np.ndarray:
    """The windowed feature's spectrum, complex64 (a float32 input's FFT is complex64 already)."""
    spectrum = fft.fft2(feature * _hann(feature.shape), workers=-1)
    return np.asarray(spectrum.astype(np.complex64, copy=False))


def _dft_around(spectrum: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The correlation surface at arbitrary (ys x xs) positions, by matrix DFT."""
    height, width = spectrum.shape
    rows = np.exp(2j * np.pi * np.outer(ys, fft.fftfreq(height))).astype(np.complex64)
    cols = np.exp(2j * np.pi * np.outer(fft.fftfreq(width), xs)).astype(np.complex64)
    result: np.ndarray = (rows @ spectrum @ cols).real
    return result


def _refine_peak(spectrum: np.ndarray, peak: tuple[int, int]) -> tuple[float, float]:
    """Locate the correlation peak to 1/UPSAMPLE px: two rounds of matrix DFT around the peak."""
    y, x = float(peak[0]), float(peak[1])
    for step in (0.1, 1.0 / UPSAMPLE):
        span = np.arange(-10, 11) * step  # +-1 px at 0.1 px, then +-0.1 px at the final step
        ys, xs = y + span, x + span
        local = _dft_around(spectrum, ys, xs)
        iy, ix = np.unravel_index(int(np.argmax(local)), local.shape)
        y, x = float(ys[iy]), float(xs[ix])
    return y, x


def _estimate(
    reference_spectrum: np.ndarray, moving: np.ndarray, cross_modal: bool
) -> ShiftEstimate:
    spectrum = _spectrum(feature_image(moving, cross_modal))
    np.conj(spectrum, out=spectrum)
    np.multiply(reference_spectrum, spectrum, out=spectrum)  # reference x conj(moving), in place
    magnitude = np.abs(spectrum)
    np.maximum(magnitude, np.float32(1e-12), out=magnitude)
    magnitude **= np.float32(WHITEN)
    spectrum /= magnitude
    surface = fft.ifft2(spectrum, workers=-1).real
    iy, ix = np.unravel_index(int(np.argmax(surface)), surface.shape)
    height, width = surface.shape
    py, px = int(iy), int(ix)
    peak = (py if py <= height // 2 else py - height, px if px <= width // 2 else px - width)
    response = float((surface[py, px] - surface.mean()) / max(float(surface.std()), 1e-12))
    dy, dx = _refine_peak(spectrum, peak)
    return ShiftEstimate(dy=dy, dx=dx, response=response)


def estimate_shift(
    reference: np.ndarray, moving: np.ndarray, *, cross_modal: bool
) -> ShiftEstimate:
    """The shift to apply to `moving` so it lies on `reference` (same field, same frame size).

    Cross-correlation of the feature images with a partially whitened spectrum, its peak refined to
    1/UPSAMPLE px by an upsampled DFT (Guizar-Sicairos et al., Opt. Lett. 33, 156, 2008). `response`
    is the peak's height in standard deviations of the correlation surface.
    """
    if reference.shape[:2] != moving.shape[:2]:
        raise ParameterError(f"frames differ in size: {reference.shape} vs {moving.shape}")
    return _estimate(_spectrum(feature_image(reference, cross_modal)), moving, cross_modal)


def apply_shift(image: np.ndarray, shift: Shift) -> np.ndarray:
    """`image` moved by (dy, dx) with bilinear interpolation; edges repeat; same dtype."""
    dy, dx = shift
    if dy == 0 and dx == 0:
        return np.asarray(image.copy())
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float32)
    height, width = image.shape[:2]
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


@dataclass(frozen=True)
class Registration:
    """Registered frames and the shift applied to each (reference: (0, 0))."""

    frames: dict[Modality, np.ndarray]
    shifts: dict[Modality, Shift]
    refined: dict[Modality, bool]


class Registrar:
    """Registers the frames of a field to `reference` with calibrated offsets and refinement."""

    def __init__(self, config: RegistrationConfig | None = None, reference: Modality | None = None):
        self.config = config or RegistrationConfig()
        self.reference = reference or self.config.reference
        self._recent: list[dict[Modality, Shift]] = []  # the last refined fields (reuse_stable)
        self._stable: dict[Modality, Shift] | None = None
        self._reused = 0

    def calibrated(self, modality: Modality) -> Shift:
        """The rig's calibrated shift for `modality` (0, 0 if never calibrated)."""
        if modality is self.reference:
            return (0.0, 0.0)
        dy, dx = self.config.offsets_px.get(modality, (0.0, 0.0))
        return (float(dy), float(dx))

    def estimate(self, frames: Mapping[Modality, np.ndarray]) -> dict[Modality, ShiftEstimate]:
        """Per-field phase-correlation estimates for every non-reference modality."""
        if self.reference not in frames:
            raise ParameterError(f"registration reference {self.reference.value} was not acquired")
        ref = frames[self.reference]
        spectra: dict[bool, np.ndarray] = {}
        found: dict[Modality, ShiftEstimate] = {}
        ref_flat: np.ndarray | None = None
        with _ONE_BLAS_THREAD.limit(limits=1, user_api="blas"):
            for modality, image in frames.items():
                if modality is self.reference:
                    continue
                if image.shape[:2] != ref.shape[:2]:
                    raise ParameterError(
                        f"{modality.value} frame is {image.shape}, reference {ref.shape}"
                    )
                cross = is_fluorescence(modality) != is_fluorescence(self.reference)
                if cross not in spectra:
                    ref_flat = _flat(ref) if ref_flat is None else ref_flat
                    spectra[cross] = _spectrum(feature_image(ref, cross, ref_flat))
                found[modality] = _estimate(spectra[cross], image, cross)
        return found

    def shifts(
        self, frames: Mapping[Modality, np.ndarray]
    ) -> tuple[dict[Modality, Shift], dict[Modality, bool]]:
        """The shift to apply to each frame, and whether the per-field refinement was used."""
        shifts: dict[Modality, Shift] = (
            {self.reference: (0.0, 0.0)} if self.reference in frames else {}
        )
        refined: dict[Modality, bool] = {self.reference: False}
        every = self.config.reuse_stable
        if every and self._stable is not None and self._reused < every - 1:
            self._reused += 1
            for modality in frames:
                if modality is not self.reference:
                    shifts[modality], refined[modality] = self._stable[modality], False
            return shifts, refined
        estimates = self.estimate(frames) if self.config.refine else {}
        for modality in frames:
            if modality is self.reference:
                continue
            prior = self.calibrated(modality)
            shifts[modality], refined[modality] = prior, False
            found = estimates.get(modality)
            if found is None:
                continue
            distance = float(np.hypot(found.dy - prior[0], found.dx - prior[1]))
            if distance <= self.config.max_shift_px and found.response >= MIN_RESPONSE:
                shifts[modality], refined[modality] = found.shift, True
            else:
                log.warning(
                    "registration of %s: estimate %s (peak %.3f) is %.1f px from calibration; "
                    "using the calibrated offset",
                    modality.value,
                    (round(found.dy, 2), round(found.dx, 2)),
                    found.response,
                    distance,
                )
        if every:
            self._track(shifts, refined, every)
        return shifts, refined

    def _track(
        self, shifts: dict[Modality, Shift], refined: dict[Modality, bool], every: int
    ) -> None:
        """`reuse_stable`: keep the last refined fields; a run of `every` agreeing ones (0.1 px)
        gives the shifts reused, a check field that disagrees ends the reuse."""
        self._reused = 0
        moving = [m for m in shifts if m is not self.reference]
        if not moving or not all(refined.get(m) for m in moving):
            self._recent, self._stable = [], None
            return
        if self._stable is not None and any(
            np.hypot(*np.subtract(shifts[m], self._stable[m])) > STABLE_PX for m in moving
        ):
            self._recent, self._stable = [], None
        self._recent = [*self._recent, dict(shifts)][-every:]
        if self._stable is None and len(self._recent) == every:
            median = {
                m: tuple(float(v) for v in np.median([r[m] for r in self._recent], axis=0))
                for m in moving
            }
            if all(
                np.hypot(*np.subtract(r[m], median[m])) <= STABLE_PX
                for r in self._recent
                for m in moving
            ):
                self._stable = {m: (v[0], v[1]) for m, v in median.items()}

    def register(self, frames: Mapping[Modality, np.ndarray]) -> Registration:
        """Register every frame to the reference."""
        shifts, refined = self.shifts(frames)
        registered = {m: apply_shift(image, shifts[m]) for m, image in frames.items()}
        return Registration(frames=registered, shifts=shifts, refined=refined)


def calibrate(
    fields: Iterable[Mapping[Modality, np.ndarray]],
    reference: Modality = Modality.COLOR1,
    modalities: Sequence[Modality] = MODALITIES,
) -> dict[Modality, Shift]:
    """The rig's offsets: per modality, the median of per-field estimates (robust to bad fields)."""
    registrar = Registrar(RegistrationConfig(refine=True, reference=reference))
    found: dict[Modality, list[tuple[float, float]]] = {
        m: [] for m in modalities if m is not reference
    }
    for frames in fields:
        for modality, estimate in registrar.estimate(frames).items():
            if modality in found and estimate.response >= MIN_RESPONSE:
                found[modality].append(estimate.shift)
    offsets: dict[Modality, Shift] = {}
    for modality, values in found.items():
        if not values:
            raise ParameterError(f"calibration found no usable field for {modality.value}")
        arr = np.asarray(values)
        offsets[modality] = (float(np.median(arr[:, 0])), float(np.median(arr[:, 1])))
    return offsets

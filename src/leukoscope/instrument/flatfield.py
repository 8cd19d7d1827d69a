"""Dark-frame and flat-field correction, and the per-light exposure calibration (`calibrate`).

- Dark: with every light off, `frames` frames per light at that light's exposure, averaged: the
  camera's offset and fixed pattern.
- Flat: per light, the median of `fields` fields of view minus its dark frame, smoothed (Gaussian,
  1/32 of the frame side) and divided by its maximum: the illumination's shape (LED position,
  condenser, vignetting), 1 where the field is brightest. On a real rig, point the stage at an
  empty slide area; on a smear the median over several fields and the smoothing remove the cells.
- Applied to every frame before registration: ``(raw - dark) / flat + mean(dark)``, rounded and
  clipped to the camera's range: the fixed pattern and the fall-off are removed, the whole field
  is lit as its brightest part (the level the exposure calibration sets) and the camera's black
  level stays where it always is (the frames a model was trained on have it); saved fields are
  the corrected frames, and acquisition.json records the correction (`correction`: its date and
  settings digest).
- Lamp level: the bright-field lamps drift from field to field (a gain over the whole frame that no
  flat field holds). Calibration records, per bright-field light, the background of the
  calibration fields where the light is brightest (`background`: the median over the fields of the
  95th percentile of the raw frame less the fixed pattern, where the flat field is `BRIGHTEST` or
  more); each corrected bright-field frame is then scaled about the black level so that its own
  background, measured there, sits at that level. A frame whose background is clipped (`CLIPPED`
  of full scale or more), no brighter than the black level, or off by a gain outside `LAMP_RANGE`
  is left as dark/flat corrected, so that the field-quality checks still see a saturated or dark
  frame. Calibrations saved before this have no level and are applied without it.
- Exposure: each bright-field light's exposure is scaled so that the background (the 95th
  percentile of the corrected frame) lies at `target` of full scale; the fluorescence exposure is
  left as configured.

Saved as `<path>/correction.npz` (float32 maps) and `<path>/correction.json` (date, settings digest,
frame shape, counts, bright-field lamp levels); `rig.calibration.path`, beside the rig's
configuration. A missing calibration, one older than `rig.calibration.max_age_days`, or one taken
with other acquisition settings is one warning when a run opens the rig.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from leukoscope.atomic import atomic_write_bytes
from leukoscope.errors import AcquisitionError
from leukoscope.types import Modality

log = logging.getLogger(__name__)

DATA_FILE = "correction.npz"
META_FILE = "correction.json"
BACKGROUND_PERCENTILE = 95.0  # a bright-field frame's background: cells are darker than it
LAMP_RANGE = (0.7, 1.4)  # lamp gains outside this are a fault to see, not drift to scale away
BRIGHTEST = 0.97  # backgrounds are measured where the flat field is at least this
CLIPPED = 0.98  # a background at this share of full scale or above is (nearly) saturated


@dataclass(frozen=True)
class RigCorrection:
    """Per light: the mean dark frame and the flat field (mean 1), with when and how taken."""

    dark: dict[Modality, np.ndarray]
    flat: dict[Modality, np.ndarray]
    created_utc: str
    settings_digest: str
    frames: int = 0
    fields: int = 0
    background: dict[Modality, float] = field(default_factory=dict)  # lamp levels, counts

    def apply(self, modality: Modality, image: np.ndarray, full: float) -> np.ndarray:
        """`image` corrected (same shape and type); unchanged for a light without maps."""
        if modality not in self.dark or self.dark[modality].shape != image.shape:
            return image
        dark = self.dark[modality]
        black = float(dark.mean())
        corrected = (image.astype(np.float32) - dark) / self.flat[modality] + black
        level = self.background.get(modality)
        if level is not None:
            gain = lamp_gain(corrected, self.flat[modality], level, black, full)
            if gain != 1.0:
                corrected -= black
                corrected *= np.float32(gain)
                corrected += black
        return np.asarray(np.clip(np.rint(corrected), 0, full).astype(image.dtype))

    @property
    def label(self) -> str:
        """How acquisition.json records it."""
        return f"dark+flat {self.created_utc} settings {self.settings_digest}"

    def save(self, folder: Path) -> Path:
        """Write the maps and their description under `folder`; the folder."""
        import io

        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"dark_{m.value}": a for m, a in self.dark.items()}
        arrays |= {f"flat_{m.value}": a for m, a in self.flat.items()}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(folder / DATA_FILE, buffer.getvalue())
        meta = {
            "created_utc": self.created_utc,
            "settings_digest": self.settings_digest,
            "modalities": [m.value for m in self.dark],
            "frames": self.frames,
            "fields": self.fields,
            "background": {m.value: round(v, 3) for m, v in self.background.items()},
        }
        atomic_write_bytes(folder / META_FILE, json.dumps(meta, indent=1).encode())
        return folder


def load(folder: Path) -> RigCorrection | None:
    """The correction saved under `folder`; None when there is none; AcquisitionError if broken."""
    if not (folder / META_FILE).is_file():
        return None
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        modalities = [Modality(m) for m in meta["modalities"]]
        with np.load(folder / DATA_FILE, allow_pickle=False) as data:
            dark = {m: np.asarray(data[f"dark_{m.value}"], np.float32) for m in modalities}
            flat = {m: np.asarray(data[f"flat_{m.value}"], np.float32) for m in modalities}
        if any(not np.all(np.isfinite(f)) or f.min() <= 0 for f in flat.values()):
            raise ValueError("a flat field is not positive everywhere")
        background = {Modality(m): float(v) for m, v in meta.get("background", {}).items()}
        if any(not np.isfinite(v) or v <= 0 for v in background.values()):
            raise ValueError("a background level is not positive")
        return RigCorrection(
            dark, flat, str(meta["created_utc"]), str(meta["settings_digest"]),
            int(meta.get("frames", 0)), int(meta.get("fields", 0)), background,
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AcquisitionError(
            f"{folder}: calibration unreadable ({exc}); run calibrate again"
        ) from None


def staleness(correction: RigCorrection | None, digest: str, max_age_days: float) -> str:
    """Why `correction` should not be trusted ("" when it can be)."""
    if correction is None:
        return "no dark/flat calibration: frames are not corrected; run `leukoscope calibrate`"
    if correction.settings_digest != digest:
        return (
            f"the dark/flat calibration of {correction.created_utc} was taken with other "
            f"acquisition settings ({correction.settings_digest}, now {digest}); run calibrate"
        )
    age = datetime.now(timezone.utc) - datetime.fromisoformat(correction.created_utc)
    if age.total_seconds() > max_age_days * 86400:
        return (
            f"the dark/flat calibration is {age.days} days old (more than {max_age_days:g}); "
            "run `leukoscope calibrate`"
        )
    return ""


def flat_from(fields: list[np.ndarray], dark: np.ndarray) -> np.ndarray:
    """A flat field (1 where the field is brightest) from raw frames of several fields and the
    dark frame."""
    median = np.median(np.stack(fields).astype(np.float32), axis=0) - dark
    sigma = max(median.shape) / 32.0
    smooth = cv2.GaussianBlur(median, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    peak = float(smooth.max())
    if not peak > 0:
        raise AcquisitionError("flat field: the frames are no brighter than the dark frame")
    return np.asarray(np.maximum(smooth / peak, 0.05), dtype=np.float32)


def frame_background(frame: np.ndarray, flat: np.ndarray | None = None) -> float:
    """The background of a bright-field frame: the 95th percentile (every 4th pixel each way) of
    its brightest-lit part (where `flat` is `BRIGHTEST` or more; all of it without `flat`)."""
    pixels = frame[::4, ::4]
    if flat is not None:
        bright = flat[::4, ::4] >= BRIGHTEST
        pixels = pixels[bright] if np.count_nonzero(bright) >= 256 else pixels
    return float(np.percentile(pixels, BACKGROUND_PERCENTILE))


def lamp_gain(
    corrected: np.ndarray, flat: np.ndarray, level: float, black: float, full: float
) -> float:
    """The gain about `black` that brings the background of `corrected` to `level` (1 when the
    frame is clipped, dark, or off by more than `LAMP_RANGE`)."""
    background = frame_background(corrected, flat)
    if background >= CLIPPED * full or level >= CLIPPED * full or background <= black + 1.0:
        return 1.0
    gain = (level - black) / (background - black)
    return gain if LAMP_RANGE[0] <= gain <= LAMP_RANGE[1] else 1.0


def background_from(fields: list[np.ndarray], dark: np.ndarray, flat: np.ndarray) -> float:
    """The background level of the calibration `fields` where the light is brightest, as the
    camera gives it less the fixed pattern: the median over the fields of each one's background.
    Measured on the raw frames, not the corrected ones, so that it does not carry the flat
    field's own error (its peak, the maximum of a smoothed median of cells, runs high)."""
    black = float(dark.mean())
    levels = [frame_background(f.astype(np.float32) - dark + black, flat) for f in fields]
    return float(np.median(levels))


def exposure_for(
    frame: np.ndarray, exposure_us: float, full: float, target: float, limit_us: float
) -> float:
    """The exposure that puts the background (95th percentile) of `frame` at `target` of full
    scale; a clipped frame is measured again at half the exposure by the caller."""
    level = float(np.percentile(frame, 95)) / full
    if level <= 0:
        raise AcquisitionError("exposure: the frame is black; is the light on?")
    return float(min(limit_us, max(1.0, round(exposure_us * target / level, 1))))


def now_utc() -> str:
    """The current time as ISO 8601 UTC to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()

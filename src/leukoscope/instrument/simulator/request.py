"""What one simulation request may ask for: sizes checked from the request, before anything is
rendered, so a typo (`--out-px 100000`) is one error line, not tens of gigabytes.

Rendering a field takes about 90 bytes of memory per pixel (a 4096 px frame: about 1.5 GB); every
output image is counted at its written size (4 modalities, 1 or 2 bytes per pixel).
"""

from __future__ import annotations

from leukoscope.errors import ParameterError

MIN_FRAME_SIDE = 32
"""Smallest simulated frame side, px (a white cell must fit)."""
MAX_FRAME_SIDE = 4096
"""Largest simulated frame side, px (about 1.5 GB to render one field)."""
MAX_CROP_PX = 1024
"""Largest side of a simulated dataset crop, px, native (`--crop-um`) or resized (`--out-px`)."""
MAX_CELLS = 1_000_000
"""Most cells in one simulated dataset."""
MAX_OUTPUT_BYTES = 32 * 1024**3
"""Most image bytes one request may write (32 GiB, before compression)."""
MODALITY_COUNT = 4
GIB = 1024**3


def _total(images: int, side: int, bytes_per_px: int, what: str) -> None:
    total = images * MODALITY_COUNT * side * side * bytes_per_px
    if total > MAX_OUTPUT_BYTES:
        raise ParameterError(
            f"{what} would write {total / GIB:.1f} GiB of images; the limit is "
            f"{MAX_OUTPUT_BYTES // GIB} GiB per request (fewer images or smaller ones)"
        )


def check_dataset_request(cells: int, crop_side: int, out_px: int | None, bit_depth: int) -> None:
    """Refuse (ParameterError, one line naming the limit) a dataset too large to render or write."""
    if cells > MAX_CELLS:
        raise ParameterError(f"--cells may be at most {MAX_CELLS:,}, got {cells:,}")
    if crop_side > MAX_CROP_PX:
        raise ParameterError(
            f"--crop-um gives crops of {crop_side} px at this pixel size; the limit is "
            f"{MAX_CROP_PX} px"
        )
    if out_px is not None and not 2 <= out_px <= MAX_CROP_PX:  # 2: a crop has a centre
        raise ParameterError(f"--out-px must be 2-{MAX_CROP_PX} px, got {out_px}")
    _total(max(cells, 0), out_px or crop_side, 1 if bit_depth == 8 else 2, f"{cells} cells")


def check_acquisition_request(fields: int, frame_shape: tuple[int, int]) -> None:
    """Refuse (ParameterError, one line naming the limit) frames or fields too large to render."""
    for side in frame_shape:
        if not MIN_FRAME_SIDE <= side <= MAX_FRAME_SIDE:
            raise ParameterError(
                f"--frame-size must be {MIN_FRAME_SIDE}-{MAX_FRAME_SIDE} px for the simulator, "
                f"got {side}"
            )
    _total(max(fields, 0), max(frame_shape), 2, f"{fields} fields")

"""The report gallery's cell pictures, drawn as the review page draws them (review/images.py):
the bright-field lights as one colour composite and the fluorescence auto-contrasted in its
display colour, each at the native crop (`crop_um` at the camera's pixel size, 96 px for 24 um at
0.25 um/px) re-cut from the saved acquisition, or from the stored thumbnail when the acquisition
is gone (then at the classifier's smaller crop, and the report says so)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from leukoscope.config import Settings
from leukoscope.errors import ParameterError, StorageError
from leukoscope.pictures.native import NativeCrops, cell_tiles
from leukoscope.pictures.views import cell_view, display_colours
from leukoscope.types import (
    MODALITIES,
    NUCLEAR_STAIN,
    CellKey,
    CellResult,
    Modality,
    bright_field_modalities,
    parse_modalities,
)


@dataclass(frozen=True)
class CellPictures:
    """PNG pictures of one cell; `crop` is "native" or "stored"; `side_px` their side."""

    composite: bytes | None
    fluorescence: bytes | None
    crop: str
    side_px: int


def model_modalities(names: Iterable[str]) -> tuple[Modality, ...]:
    """The modalities a run's model saw (the stored thumbnail's tiles); all four if unreadable."""
    try:
        return parse_modalities(list(names))
    except ParameterError:
        return MODALITIES


def gallery_pictures(
    results: Iterable[CellResult],
    source: str,
    thumbnail: Callable[[CellKey], bytes | None],
    modalities: tuple[Modality, ...],
    settings: Settings,
    prepared: Mapping[tuple[int, int], dict[Modality, np.ndarray]] | None = None,
    on_cell: Callable[[int, int], None] | None = None,
) -> dict[CellKey, CellPictures]:
    """Pictures of `results`: the review's prepared native crops where there are some, else read
    field by field (each saved field read once); a cell with no picture at all is left out (the
    page says "no image stored"). `on_cell(done, total)` follows the progress."""
    native = NativeCrops(settings.pipeline.segmentation.crop_um, fields_cached=1)
    colours = display_colours(settings)
    pictures: dict[CellKey, CellPictures] = {}
    ordered = sorted(results, key=lambda r: r.key)
    for done, result in enumerate(ordered, 1):
        if on_cell is not None:
            on_cell(done, len(ordered))
        ready = (prepared or {}).get((result.key.fov, result.key.cell_index))
        try:
            found = (
                (ready, "native")
                if ready is not None
                else cell_tiles(
                    native, source, result.key.fov, result.bbox, thumbnail(result.key), modalities
                )
            )
        except StorageError:  # an unreadable stored thumbnail: no picture, the report goes on
            found = None
        if found is None:
            continue
        tiles, crop = found
        side = next(iter(tiles.values())).shape[0]
        has_bright = any(m in tiles for m in bright_field_modalities())
        pictures[result.key] = CellPictures(
            composite=cell_view(tiles, colours, "composite") if has_bright else None,
            fluorescence=cell_view(tiles, colours, NUCLEAR_STAIN.value)
            if NUCLEAR_STAIN in tiles
            else None,
            crop=crop,
            side_px=side,
        )
    return pictures

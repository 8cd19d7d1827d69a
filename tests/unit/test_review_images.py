"""Cell pictures for review: tiles, auto-contrast, composite in the configured display colours."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from leukoscope.config import Settings
from leukoscope.errors import StorageError
from leukoscope.pictures.png import encode_png
from leukoscope.pictures.thumbnail import split_tiles
from leukoscope.pictures.views import auto_contrast, cell_view, display_colours
from leukoscope.types import MODALITIES, Modality


def _decode(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]  # RGB


def test_auto_contrast_spans_zero_to_one_and_flat_tiles_are_black() -> None:
    tile = np.linspace(100, 120, 400, dtype=np.float32).reshape(20, 20)
    stretched = auto_contrast(tile)
    assert stretched.min() == 0.0 and stretched.max() == 1.0
    assert not auto_contrast(np.full((8, 8), 7.0, np.float32)).any()


def test_split_tiles_needs_one_square_per_modality() -> None:
    strip = encode_png(np.zeros((16, 64), np.uint8))
    assert [t.shape for t in split_tiles(strip, MODALITIES).values()] == [(16, 16)] * 4
    with pytest.raises(StorageError, match="does not hold 3 tiles"):
        split_tiles(strip, MODALITIES[:3])
    with pytest.raises(StorageError, match="not a readable PNG"):
        split_tiles(b"not a png", MODALITIES)


def test_each_light_is_drawn_in_its_configured_colour() -> None:
    settings = Settings.model_validate(
        {"rig": {"lights": {"channels": {"color1": {"display_color": "#ff00ff"}}}}}
    )
    colours = display_colours(settings)
    ramp = np.tile(np.arange(8, dtype=np.float32), (8, 1))
    tiles = {m: ramp for m in MODALITIES}
    brightest = _decode(cell_view(tiles, colours, "color1"))[0, -1]
    assert brightest.tolist() == [255, 0, 255]  # the configured magenta, not the default blue
    fluorescence = _decode(cell_view(tiles, colours, "fluorescence"))[0, -1]
    assert fluorescence.tolist() == [0x40, 0xFF, 0x60]
    # red + green + blue lights at full scale add up to white, at zero to black
    default = display_colours(Settings())
    composite = _decode(cell_view(tiles, default, "composite"))
    assert composite[0, -1].tolist() == [255, 255, 255] and composite[0, 0].tolist() == [0, 0, 0]
    with pytest.raises(StorageError, match="unknown view"):
        cell_view(tiles, colours, "x-ray")
    with pytest.raises(StorageError, match="no bright-field"):
        cell_view({Modality.FLUORESCENCE: ramp}, colours, "composite")


def test_a_display_colour_must_be_hex() -> None:
    with pytest.raises(ValidationError, match="display_color"):
        Settings.model_validate(
            {"rig": {"lights": {"channels": {"color1": {"display_color": "blue"}}}}}
        )

"""Saved fields carry the OME metadata microscopists expect, valid against the OME schema."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import tifffile
from ome_types import from_xml

from leukoscope.acquisition_files.storage import ome_color, write_field
from leukoscope.config import LightsConfig
from leukoscope.errors import StorageError
from leukoscope.instrument.acquisition import channel_optics
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.types import MODALITIES, FrameSet, Modality


def _frameset(bit_depth: int = 12) -> FrameSet:
    rng = np.random.default_rng(0)
    frames = tuple(rng.integers(0, 4096, (64, 80), dtype=np.uint16) for _ in MODALITIES)
    return FrameSet(
        sample_id="S-1",
        fov=0,
        modalities=MODALITIES,
        frames=frames,
        timestamps_s=(0.0, 0.1, 0.2, 0.3),
        exposures_us=(2000.0, 2000.0, 2000.0, 20000.0),
        lit=MODALITIES,
        shifts_px=((0.0, 0.0),) * 4,
        pixel_size_um=0.25,
        bit_depth=bit_depth,
    )


def test_a_simulated_field_is_schema_valid_with_colours_wavelengths_and_dates(
    tmp_path: Path,
) -> None:
    when = datetime(2026, 11, 27, 9, 30, 5, tzinfo=timezone.utc)
    generate_acquisition(tmp_path / "s", "S-1", 1, frame_shape=(128, 160), acquired_at=when)
    path = tmp_path / "s" / "fov_0000.ome.tif"
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.CENTIMETER
        assert page.tags["XResolution"].value == (40000, 1)  # 0.25 um/px = 40,000 px/cm
        assert page.tags["YResolution"].value == (40000, 1)
        ome = from_xml(tif.ome_metadata, validate=True)  # XSD validation
    pixels = ome.images[0].pixels
    assert pixels.significant_bits == 12 and pixels.type.value == "uint16"
    assert pixels.physical_size_x == 0.25 and pixels.physical_size_x_unit.value == "µm"
    date = ome.images[0].acquisition_date
    assert date is not None and date.replace(tzinfo=timezone.utc) == when
    lights = LightsConfig().channels
    for channel, modality in zip(pixels.channels, MODALITIES, strict=True):
        light = lights[modality]
        assert channel.name == modality.value
        red, green, blue = (int(light.display_color[i : i + 2], 16) for i in (1, 3, 5))
        assert channel.color.as_rgb_tuple(alpha=False) == (red, green, blue)
        assert channel.excitation_wavelength == light.wavelength_nm
        fluorescent = modality is Modality.FLUORESCENCE
        assert channel.illumination_type.value == (
            "Epifluorescence" if fluorescent else "Transmitted"
        )
        assert channel.contrast_method.value == ("Fluorescence" if fluorescent else "Brightfield")
        assert channel.emission_wavelength == (525.0 if fluorescent else light.wavelength_nm)


def test_compressed_fields_read_back_identically_and_bad_compression_is_refused(
    tmp_path: Path,
) -> None:
    frameset = _frameset()
    optics = channel_optics(LightsConfig(), MODALITIES)
    plain = write_field(tmp_path / "a", frameset, optics=optics)
    packed = write_field(tmp_path / "b", frameset, optics=optics, compression="zlib")
    with tifffile.TiffFile(packed) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    with tifffile.TiffFile(plain) as a, tifffile.TiffFile(packed) as b:
        assert np.array_equal(a.asarray(), b.asarray())
    with pytest.raises(StorageError, match="compression 'lzma'"):
        write_field(tmp_path / "c", frameset, compression="lzma")


def test_ome_colour_is_signed_rgba() -> None:
    assert ome_color("#ffffff") == -1
    assert ome_color("#0000ff") == 0x0000FFFF
    assert ome_color("#ff0000") == -16776961  # 0xFF0000FF as a signed 32-bit integer

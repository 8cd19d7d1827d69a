"""Write and read speed and size of saved fields: OME-TIFF and OME-Zarr, uncompressed and zlib.

Simulated 2048 x 2048 fields (12-bit in uint16, four channels: 33.5 MB of pixels each), written with
`storage.write_field` and read back with `storage.read_field` (every door check included), each
field timed; prints the median per field and the size on disk, per format and compression.

    .venv/bin/python benchmarks/field_compression.py --fields 6
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from leukoscope.acquisition_files.channels import channel_optics
from leukoscope.acquisition_files.storage import (
    COMPRESSIONS,
    FIELD_FORMATS,
    list_fields,
    read_acquisition_meta,
    read_field,
    write_acquisition_meta,
    write_field,
)
from leukoscope.config import LightsConfig
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.types import MODALITIES


def _size_mb(path: Path) -> float:
    """Bytes on disk of a field file, or of every file in a field folder, in MB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fields", type=int, default=6)
    parser.add_argument("--formats", nargs="+", default=list(FIELD_FORMATS))
    args = parser.parse_args()
    optics = channel_optics(LightsConfig(), MODALITIES)
    with tempfile.TemporaryDirectory() as temp:
        source = Path(temp) / "source"
        generate_acquisition(source, "bench", args.fields, seed=3)
        framesets = [read_field(source, fov) for fov in list_fields(source)]
        meta = read_acquisition_meta(source)
        print(
            "| format | compression | write s/field (median) | read s/field (median) "
            "| MB/field | ratio |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        raw_mb = None
        for field_format in args.formats:
            for compression in COMPRESSIONS:
                folder = Path(temp) / f"{field_format}-{compression}"
                writes, reads, sizes = [], [], []
                for frameset in framesets:
                    began = time.perf_counter()
                    path = write_field(
                        folder,
                        frameset,
                        optics=optics,
                        compression=compression,
                        field_format=field_format,
                    )
                    writes.append(time.perf_counter() - began)
                    sizes.append(_size_mb(path))
                write_acquisition_meta(
                    folder, meta.model_copy(update={"field_format": field_format})
                )
                for fov in list_fields(folder):
                    began = time.perf_counter()
                    read_field(folder, fov)
                    reads.append(time.perf_counter() - began)
                size = statistics.mean(sizes)
                raw_mb = raw_mb or size
                print(
                    f"| {field_format} | {compression} | {statistics.median(writes):.3f} | "
                    f"{statistics.median(reads):.3f} | {size:.1f} | {raw_mb / size:.2f} |"
                )


if __name__ == "__main__":
    main()

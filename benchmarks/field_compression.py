"""Write and read speed and size of saved fields, uncompressed and zlib (lossless).

Simulated 2048 x 2048 fields (12-bit in uint16, four channels: 33.5 MB of pixels each), written with
`storage.write_field` and read back with `storage.read_field`, each field timed; prints the median
per field and the size on disk.

    .venv/bin/python benchmarks/field_compression.py --fields 6
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from leukoscope.config import LightsConfig
from leukoscope.instrument.acquisition import channel_optics
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.instrument.storage import COMPRESSIONS, list_fields, read_field, write_field
from leukoscope.types import MODALITIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fields", type=int, default=6)
    args = parser.parse_args()
    optics = channel_optics(LightsConfig(), MODALITIES)
    with tempfile.TemporaryDirectory() as temp:
        source = Path(temp) / "source"
        generate_acquisition(source, "bench", args.fields, seed=3)
        framesets = [read_field(source, fov) for fov in list_fields(source)]
        print("| compression | write s/field (median) | read s/field (median) | MB/field | ratio |")
        print("| --- | --- | --- | --- | --- |")
        raw_mb = None
        for compression in COMPRESSIONS:
            folder = Path(temp) / compression
            writes, reads, sizes = [], [], []
            for frameset in framesets:
                began = time.perf_counter()
                path = write_field(folder, frameset, optics=optics, compression=compression)
                writes.append(time.perf_counter() - began)
                sizes.append(path.stat().st_size / 1e6)
            (folder / "acquisition.json").write_bytes((source / "acquisition.json").read_bytes())
            for fov in list_fields(folder):
                began = time.perf_counter()
                read_field(folder, fov)
                reads.append(time.perf_counter() - began)
            size = statistics.mean(sizes)
            raw_mb = raw_mb or size
            print(
                f"| {compression} | {statistics.median(writes):.3f} | "
                f"{statistics.median(reads):.3f} | {size:.1f} | {raw_mb / size:.2f} |"
            )


if __name__ == "__main__":
    main()

"""The simulated rig's red-cell layers on disk: a hit gives the same arrays, anything else rebuilds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from leukoscope.instrument.simulator import layer_cache
from leukoscope.instrument.simulator.layer_cache import LayerCache
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.types import MODALITIES

PARAMS = SampleParams(frame_shape=(128, 128), canvas_side=128, wbc_per_field=2.0)


def _renderer(cache: LayerCache | None, seed: int = 5) -> FieldRenderer:
    return FieldRenderer(SimulatedSample(seed, PARAMS), layer_cache=cache)


def _layers(renderer: FieldRenderer) -> list[np.ndarray]:
    renderer.prepare()
    return [renderer._layer(c, m) for c in range(PARAMS.background_canvases) for m in MODALITIES]


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> np.ndarray:
        raise AssertionError("a layer was built, not read from the cache")

    monkeypatch.setattr(FieldRenderer, "_build", refuse)


def test_a_hit_gives_the_arrays_built_without_a_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _layers(_renderer(None))
    fresh = _renderer(None).field(0)
    built = _layers(_renderer(LayerCache(tmp_path)))  # miss: built and saved
    assert len(list(tmp_path.glob("*.npy"))) == len(expected)
    _no_build(monkeypatch)
    read = _layers(_renderer(LayerCache(tmp_path)))
    for a, b, c in zip(expected, built, read, strict=True):
        assert a.tobytes() == b.tobytes() == c.tobytes()
        assert not c.flags.writeable
    again = _renderer(LayerCache(tmp_path)).field(0)
    assert all(again[m].tobytes() == fresh[m].tobytes() for m in MODALITIES)


def test_another_seed_is_a_miss(tmp_path: Path) -> None:
    _layers(_renderer(LayerCache(tmp_path), seed=5))
    expected = _layers(_renderer(None, seed=6))
    read = _layers(_renderer(LayerCache(tmp_path), seed=6))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(expected, read, strict=True))
    assert len(list(tmp_path.glob("*.npy"))) == 2 * len(expected)


@pytest.mark.parametrize(
    "damage", ["truncated", "garbage", "foreign array", "other key", "no record"]
)
def test_a_corrupt_or_foreign_file_is_ignored_and_rebuilt(tmp_path: Path, damage: str) -> None:
    expected = _layers(_renderer(None))
    _layers(_renderer(LayerCache(tmp_path)))
    array = sorted(tmp_path.glob("*.npy"))[0]
    record = array.with_suffix(".json")
    if damage == "truncated":
        array.write_bytes(array.read_bytes()[:1000])
    elif damage == "garbage":
        array.write_bytes(b"\x93NUMPY not really" * 100)
    elif damage == "foreign array":
        np.save(array, np.ones((128, 128), np.float32))
    elif damage == "other key":
        record.write_text(json.dumps({**json.loads(record.read_text()), "key": "0" * 64}))
    else:
        record.unlink()
    read = _layers(_renderer(LayerCache(tmp_path)))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(expected, read, strict=True))
    assert array.exists() and record.exists()  # rebuilt and saved again
    key = array.stem
    assert json.loads(record.read_text())["key"] == key


def test_the_folder_is_kept_under_its_size_least_recently_used_out(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, max_bytes=3 * (128 * 128 * 4 + 128))
    for index in range(5):
        cache.save(f"{index:064d}", np.full((128, 128), index, np.float32))
    kept = sorted(p.stem for p in tmp_path.glob("*.npy"))
    assert len(kept) == 3 and f"{4:064d}" in kept
    assert not list(tmp_path.glob("*.tmp"))


def test_the_environment_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for off in ("off", "0", "no", "false", ""):
        monkeypatch.setenv(layer_cache.ENV, off)
        assert LayerCache.from_environment() is None
    monkeypatch.setenv(layer_cache.ENV, str(tmp_path / "here"))
    chosen = LayerCache.from_environment()
    assert chosen is not None and chosen.folder == tmp_path / "here"
    monkeypatch.delenv(layer_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    default = LayerCache.from_environment()
    assert default is not None and default.folder == tmp_path / "xdg" / "leukoscope" / "simulator"


def test_no_cache_without_the_sources_it_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable() -> str:
        raise OSError("no source files")

    monkeypatch.setenv(layer_cache.ENV, str(tmp_path))
    monkeypatch.setattr(layer_cache, "_environment_digest", unreadable)
    assert LayerCache.from_environment() is None

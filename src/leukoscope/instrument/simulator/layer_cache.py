"""The simulated rig's red-cell layers kept on disk between runs: the same arrays, not computed again.

A layer (a periodic red-cell background as one light source shows it: blurred and shifted in the
Fourier domain) takes ~0.2 CPU-s at 2048 x 2048 and is the same for every run of the same sample
seed, geometry, optics and code. `LayerCache` keeps them under the user's cache folder
(`$XDG_CACHE_HOME/leukoscope/simulator`, else `~/.cache/leukoscope/simulator`), one `.npy` per layer
named by a SHA-256 key of everything that shapes it: the parameters, the source text of the modules
that compute it, the NumPy and SciPy versions and the CPU features NumPy uses. Beside each array, a
small JSON record holds its key and the SHA-256 of its bytes: a file is used only if both match (a
corrupt, truncated or foreign file is ignored, removed and rebuilt). Arrays are read with
`allow_pickle=False`. The folder is kept under `MAX_BYTES`, least recently used first out.

`LEUKOSCOPE_SIMULATOR_CACHE`: unset, the default folder; `off` (or `0`, `no`, `false`, empty): no
cache; any other value, the folder to use. Without the modules' source files (or a home folder for
the default) there is no cache: layers are built every run, as with `off`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy

log = logging.getLogger(__name__)

ENV = "LEUKOSCOPE_SIMULATOR_CACHE"
MAX_BYTES = 512 * 1024 * 1024
"""Most bytes of layers kept (a 2048 x 2048 sample's eight layers take 134 MB)."""
FORMAT = 1
_OFF = {"off", "0", "no", "false", ""}
_SHAPING_MODULES = ("layer_cache", "rbc", "optics", "contrast", "render", "sample", "streams")
"""Simulator modules whose source text is part of every key: any edit to them is a new key."""


def default_folder() -> Path:
    """`$XDG_CACHE_HOME/leukoscope/simulator`, or `~/.cache/leukoscope/simulator`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "leukoscope" / "simulator"


@cache
def _environment_digest() -> str:
    """The code and libraries that shape a layer: module sources, versions, NumPy's CPU features."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _SHAPING_MODULES:
        digest.update((here / f"{name}.py").read_bytes())
    umath = importlib.import_module("numpy._core._multiarray_umath")
    features: dict[str, bool] = getattr(umath, "__cpu_features__", {})
    enabled = sorted(k for k, on in features.items() if on)
    digest.update(json.dumps([FORMAT, np.__version__, scipy.__version__, enabled]).encode())
    return digest.hexdigest()


def layer_key(parts: dict[str, Any]) -> str:
    """The SHA-256 key of a layer: its `parts` (JSON-able parameters) and the environment digest."""
    text = json.dumps({"parts": parts, "environment": _environment_digest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class LayerCache:
    """Layers on disk by key; `load` gives None for anything not verifiably the layer asked for."""

    def __init__(self, folder: Path, max_bytes: int = MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    @classmethod
    def from_environment(cls) -> LayerCache | None:
        """The cache `LEUKOSCOPE_SIMULATOR_CACHE` asks for (module docstring); None when off."""
        value = os.environ.get(ENV)
        if value is not None and value.strip().lower() in _OFF:
            return None
        try:
            _environment_digest()  # the sources it hashes are not installed: no cache
            return cls(default_folder() if value is None else Path(value).expanduser())
        except (OSError, RuntimeError, KeyError) as exc:  # no source files, no home folder
            log.info("simulator layer cache off: %s", exc)
            return None

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.npy", self.folder / f"{key}.json"

    def load(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        """The float32 `shape` layer saved under `key` (read-only), or None (missing or not valid)."""
        array_path, record_path = self._paths(key)
        if not array_path.exists():
            return None
        try:
            record = json.loads(record_path.read_text())
            layer = np.load(array_path, allow_pickle=False)
            valid = (
                isinstance(record, dict)
                and record.get("key") == key
                and layer.dtype == np.float32
                and layer.shape == tuple(shape)
                and layer.flags.c_contiguous
                and record.get("sha256") == hashlib.sha256(layer.data).hexdigest()
            )
        except (OSError, ValueError, EOFError):
            valid = False
        if not valid:
            log.info("simulator layer cache: %s is not valid; rebuilding it", array_path.name)
            self._remove(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(array_path)  # recently used: evicted last
        layer.setflags(write=False)
        return np.asarray(layer)

    def save(self, key: str, layer: np.ndarray) -> None:
        """Keep `layer` under `key` (atomically; a failure to write only loses the cache)."""
        array_path, record_path = self._paths(key)
        data = np.ascontiguousarray(layer, dtype=np.float32)
        record = {"key": key, "sha256": hashlib.sha256(data.data).hexdigest()}
        suffix = f".{os.getpid()}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(array_path.with_name(array_path.name + suffix), "wb") as out:
                np.save(out, data, allow_pickle=False)
            os.replace(array_path.with_name(array_path.name + suffix), array_path)
            record_path.with_name(record_path.name + suffix).write_text(json.dumps(record))
            os.replace(record_path.with_name(record_path.name + suffix), record_path)
        except OSError as exc:
            log.info("simulator layer cache: cannot save %s (%s)", array_path.name, exc)
            for path in (array_path, record_path):
                with contextlib.suppress(OSError):
                    path.with_name(path.name + suffix).unlink()
            return
        self._evict()

    def _remove(self, key: str) -> None:
        for path in self._paths(key):
            with contextlib.suppress(OSError):
                path.unlink()

    def _evict(self) -> None:
        """Oldest-used layers out until the folder holds at most `max_bytes` of them."""
        entries = []
        with contextlib.suppress(OSError):
            for path in self.folder.glob("*.npy"):
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    entries.append((stat.st_mtime, stat.st_size, path.stem))
        total = sum(size for _, size, _ in entries)
        for _, size, key in sorted(entries):
            if total <= self.max_bytes:
                break
            self._remove(key)
            total -= size

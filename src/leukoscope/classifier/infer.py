"""Run a trained model on raw cell crops: PyTorch or ONNX Runtime backend, same answers (1e-4).

Preprocessing is shared by both backends: scale by the dtype's range (`to_unit_float`), resize to the
model's input size if needed, normalise with the checkpoint's per-modality, per-channel mean and std.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from leukoscope.classifier.checkpoint import ModelMeta, file_digest, load_checkpoint
from leukoscope.classifier.contract import INPUT_NAME, OUTPUT_NAMES, onnx_path_for, read_onnx_digest
from leukoscope.errors import ParameterError
from leukoscope.imaging import resize_square, to_unit_float
from leukoscope.types import Modality

Backend = Literal["torch", "onnx"]
BACKENDS: tuple[str, ...] = ("torch", "onnx")


@dataclass(frozen=True)
class Runner:
    """A backend's forward pass: normalised inputs -> (probabilities, head probabilities, features).

    `split`: it takes one C-contiguous (B, C, H, W) array per modality instead of one (B, M, C, H, W).
    """

    run: Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray, np.ndarray]]
    split: bool


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """Class probabilities (B, classes) = mean over heads of head_probabilities (B, heads, classes);
    `features` (B, F): what the heads read (F = 0 from a graph exported without them);
    `open_set_scores` (B,): the model's open-set score (`classifier/open_set.py`), empty without a fit."""

    probabilities: np.ndarray
    head_probabilities: np.ndarray
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    open_set_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


def available_threads() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _torch_runner(model: object, threads: int) -> Runner:
    import torch

    from leukoscope.classifier.export import example_inputs, inference_module
    from leukoscope.classifier.models import MultimodalModel

    assert isinstance(model, MultimodalModel)
    torch.set_num_threads(threads or available_threads())  # process-wide in PyTorch
    eager = inference_module(model)
    eager.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    module: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = eager
    try:
        # TorchScript trace + freeze folds BatchNorm and fuses conv+ReLU for oneDNN; measured faster
        # than eager and, unlike torch.compile, starts in about a second. Deprecated but working.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            module = torch.jit.freeze(torch.jit.trace(eager, example_inputs(eager, 64)))  # type: ignore[no-untyped-call]
    except Exception as exc:  # pragma: no cover - TorchScript removed or unsupported here
        log.info("TorchScript unavailable (%s); running eagerly", exc)

    def run(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            probs, heads, features = module(*(torch.from_numpy(a) for a in arrays))
        return probs.numpy(), heads.numpy(), features.numpy()

    return Runner(run, eager.split_inputs)


def onnx_session(graph: bytes | Path, threads: int = 0) -> object:
    """An ONNX Runtime CPU session with every graph optimisation (NCHWc layout included)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads  # 0 = one per physical core
    options.inter_op_num_threads = 1
    source = str(graph) if isinstance(graph, Path) else graph
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def onnx_runner(graph: bytes | Path, threads: int = 0) -> Runner:
    """Run an exported graph on the CPU with `threads` cores (0 = all).

    A batch of at least two cells is cut into one chunk per core and the chunks run concurrently on
    single-threaded calls (data parallel: no synchronisation inside the many small operators of
    ShuffleNetV2); a single cell runs on one call with intra-operator threads. Worker threads live
    only for the duration of a call.
    """
    cores = threads or available_threads()
    latency = onnx_session(graph, cores)
    names = [i.name for i in latency.get_inputs()]  # type: ignore[attr-defined]
    present = {o.name for o in latency.get_outputs()}  # type: ignore[attr-defined]
    outputs = [name for name in OUTPUT_NAMES if name in present]  # older graphs: no features
    serial = onnx_session(graph, 1) if cores > 1 else latency

    def run_one(session: object, arrays: list[np.ndarray]) -> list[np.ndarray]:
        feeds = dict(zip(names, arrays, strict=True))
        got = list(session.run(outputs, feeds))  # type: ignore[attr-defined]
        if len(got) < len(OUTPUT_NAMES):
            got.append(np.zeros((len(got[0]), 0), np.float32))
        return got

    def run(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = arrays[0].shape[0]
        if cores == 1 or batch < 2:
            probs, heads, features = run_one(latency, arrays)
            return probs, heads, features
        bounds = np.linspace(0, batch, min(cores, batch) + 1).astype(int)
        results: list[list[np.ndarray]] = [[] for _ in bounds[1:]]
        errors: list[BaseException] = []

        def work(i: int) -> None:
            lo, hi = bounds[i], bounds[i + 1]
            try:
                results[i] = run_one(serial, [a[lo:hi] for a in arrays])
            except BaseException as exc:  # re-raised in the calling thread
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(1, len(results))]
        for worker in workers:
            worker.start()
        try:
            work(0)  # the calling thread takes the first chunk
        finally:
            for worker in workers:
                worker.join()
        if errors:
            raise errors[0]
        probs, heads, features = (np.concatenate([r[k] for r in results]) for k in range(3))
        return probs, heads, features

    return Runner(run, names != [INPUT_NAME])


def _onnx_graph_for(checkpoint: Path, model: object, meta: ModelMeta) -> bytes | Path:
    """The exported graph beside the checkpoint if it belongs to it, else a fresh in-memory export."""
    from leukoscope.classifier.export import onnx_bytes
    from leukoscope.classifier.models import MultimodalModel

    digest = file_digest(checkpoint)
    beside = onnx_path_for(checkpoint)
    if beside.is_file():
        if read_onnx_digest(beside) != digest:
            log.warning(
                "%s was exported from another checkpoint; exporting again in memory", beside
            )
        elif meta.open_set is not None and not _has_features(beside):
            log.warning("%s has no features output for the open-set score; exporting again", beside)
        else:
            return beside
    assert isinstance(model, MultimodalModel)
    return onnx_bytes(model, meta.input_size, meta, digest)


class Predictor:
    """Probabilities for batches of raw crops (B, M, H, W) or (B, M, H, W, C)."""

    def __init__(self, meta: ModelMeta, runner: Runner, num_heads: int, backend: str) -> None:
        self._meta = meta
        self._runner = runner
        self._num_heads = num_heads
        self.backend = backend
        self._mean = np.asarray(meta.norm_mean, np.float32)[:, :, None, None]
        self._scale = 1.0 / np.asarray(meta.norm_std, np.float32)[:, :, None, None]
        self._uint8_lut: np.ndarray | None = None

    @classmethod
    def load(cls, path: Path, backend: Backend = "onnx", threads: int = 0) -> Predictor:
        """Load a checkpoint for `backend`; `threads` 0 uses every core."""
        if backend not in BACKENDS:
            raise ParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if threads < 0:
            raise ParameterError(f"threads must be >= 0, got {threads}")
        model, meta = load_checkpoint(Path(path))
        return cls.from_model(model, meta, backend, threads, checkpoint=Path(path))

    @classmethod
    def from_model(
        cls,
        model: object,
        meta: ModelMeta,
        backend: Backend = "torch",
        threads: int = 0,
        checkpoint: Path | None = None,
    ) -> Predictor:
        """A predictor for an in-memory model (e.g. right after training)."""
        from leukoscope.classifier.export import onnx_bytes
        from leukoscope.classifier.models import MultimodalModel

        assert isinstance(model, MultimodalModel)
        if backend == "torch":
            runner = _torch_runner(model, threads)
        elif checkpoint is not None:
            runner = onnx_runner(_onnx_graph_for(checkpoint, model, meta), threads)
        else:
            runner = onnx_runner(onnx_bytes(model, meta.input_size, meta), threads)
        return cls(meta, runner, model.num_heads, backend)

    @property
    def meta(self) -> ModelMeta:
        """The checkpoint's metadata."""
        return self._meta

    @property
    def input_size(self) -> int:
        """Side in pixels the model takes."""
        return self._meta.input_size

    @property
    def modalities(self) -> tuple[Modality, ...]:
        """Modalities the model takes, in order."""
        return tuple(self._meta.modalities)

    @property
    def num_heads(self) -> int:
        """Number of output heads."""
        return self._num_heads

    def preprocess(self, crops: np.ndarray, modality_major: bool = False) -> np.ndarray:
        """Raw crops -> normalised float32 (B, M, C, S, S), C-contiguous ((M, B, C, S, S) if
        `modality_major`)."""
        crops = np.asarray(crops)
        m, c, size = len(self._meta.modalities), self._meta.in_chans, self.input_size
        mono = crops.ndim == 4
        if not (mono and c == 1) and not (crops.ndim == 5 and crops.shape[-1] == c):
            expected = "(B, M, H, W)" if c == 1 else f"(B, M, H, W, {c})"
            raise ParameterError(f"crops must be {expected} for this model, got {crops.shape}")
        if crops.shape[1] != m:
            raise ParameterError(f"crops have {crops.shape[1]} modalities, the model takes {m}")
        if crops.shape[2:4] != (size, size):
            crops = self._resize(crops)
        batch = crops.shape[0]
        shape = (m, batch, c, size, size) if modality_major else (batch, m, c, size, size)
        out = np.empty(shape, np.float32)
        planes = out if modality_major else out.swapaxes(0, 1)  # indexed [modality, cell]
        lut = self._lut() if crops.dtype == np.uint8 else None
        crops = np.ascontiguousarray(crops)
        for i in range(m):
            mean, scale = self._mean[i, :, 0, 0], self._scale[i, :, 0, 0]
            for k in range(batch):
                image, target = crops[k, i], planes[i, k]
                if lut is not None and mono:  # one table look-up per pixel, no temporaries
                    cv2.LUT(image, lut[i, :, 0], dst=target[0])
                elif lut is not None:
                    target[...] = cv2.LUT(image, lut[i][None]).transpose(2, 0, 1)
                else:
                    unit = to_unit_float(image)
                    unit = unit[None] if mono else unit.transpose(2, 0, 1)
                    target[...] = (unit - mean[:, None, None]) * scale[:, None, None]
        return out

    def _lut(self) -> np.ndarray:
        """(M, 256, C) float32: normalised value of every uint8 level, per modality and channel."""
        if self._uint8_lut is None:
            levels = to_unit_float(np.arange(256, dtype=np.uint8))[None, :, None]
            mean, scale = self._mean[:, :, 0, 0], self._scale[:, :, 0, 0]
            self._uint8_lut = np.ascontiguousarray((levels - mean[:, None]) * scale[:, None])
        return self._uint8_lut

    def _resize(self, crops: np.ndarray) -> np.ndarray:
        size = self.input_size
        flat = crops.reshape(-1, *crops.shape[2:])
        resized = np.stack([resize_square(image, size) for image in flat]) if len(flat) else flat
        return resized.reshape(*crops.shape[:2], size, size, *crops.shape[4:])

    def predict(self, crops: np.ndarray) -> Prediction:
        """Probabilities for a batch of raw crops (any batch size, 0 included)."""
        split = self._runner.split
        x = self.preprocess(crops, modality_major=split)
        k = len(self._meta.classes)
        if x.shape[1 if split else 0] == 0:
            empty = np.zeros((0, self._num_heads, k), np.float32)
            return Prediction(empty.sum(1), empty, np.zeros((0, 0), np.float32), np.zeros(0))
        probs, heads, features = self._runner.run(list(x) if split else [x])
        if self._meta.class_weights is not None:
            heads = heads * np.asarray(self._meta.class_weights, dtype=heads.dtype)
            heads /= heads.sum(axis=-1, keepdims=True)
            probs = heads.mean(axis=1)
        fit = self._meta.open_set
        scores = np.zeros(0)
        if fit is not None:
            cells = (x.swapaxes(0, 1) if split else x) if fit.needs_cells else None
            scores = fit.scores(features, cells)
        return Prediction(probs, heads, features, scores)

    def unidentified(self, prediction: Prediction) -> list[str]:
        """Per cell, `unidentified: ...` when its open-set score is above the model's threshold."""
        fit = self._meta.open_set
        if fit is None:
            return [""] * len(prediction.probabilities)
        return fit.reasons(prediction.open_set_scores)


def _has_features(graph: Path) -> bool:
    """Whether an exported graph returns the pooled features (graphs exported before did not)."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    return any(o.name == OUTPUT_NAMES[-1] for o in model.graph.output)

"""Build the rig from the configuration: the light controller and the camera, real or simulated.

Real hardware is the default; with no light controller configured (`lights.port` empty) opening the
rig is a ConfigError that says so. `lights.port = "sim://"` serves the emulated LC4 firmware on a
pty and drives it through the real serial driver; `camera.backend = "simulated"` renders the
simulated sample (both together: a simulated profile). Both share one
`SimulatedRigState`, so the simulated camera shows exactly what the lit channel would show (a wrong
light sequence shows in the images). `open_rig(config, simulate=True)` forces both.

    with open_rig(settings.rig, simulate=True) as rig:
        for result in Acquisition(rig).run("S1", fields=10, out_dir=Path("acq/S1")):
            ...

Closing the rig switches every light off first, then releases camera, port and emulator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from leukoscope.config import RigConfig
from leukoscope.errors import ConfigError
from leukoscope.instrument.camera import Camera
from leukoscope.instrument.lights import LightController, open_serial_controller
from leukoscope.instrument.shutdown import raise_on_sigterm
from leukoscope.types import Modality

log = logging.getLogger(__name__)

SIM_PORT = "sim://"
NO_RIG = (
    "no rig configured: set rig.lights.port (the light controller's serial device) and "
    "rig.camera.producer_path (the GenTL producer) in the config; or pass --simulate to use "
    "the simulated rig (its results are marked simulated)"
)


@dataclass
class SimulationOptions:
    """Knobs of the simulated rig that are not rig settings (sample seed, test faults)."""

    seed: int = 0
    frame_shape: tuple[int, int] | None = None  # None: camera width/height, else the simulator's
    drop_triggers: Collection[int] = ()  # frame ids the simulated camera loses
    wbc_per_field: float | None = None
    offsets_px: dict[Modality, tuple[float, float]] | None = None  # misregistration; None: default


@dataclass
class Rig:
    """An open rig: lights, camera, and (simulated) the shared state and the firmware emulator."""

    config: RigConfig
    lights: LightController
    camera: Camera
    simulated_lights: bool = False
    simulated_camera: bool = False
    state: Any = None  # SimulatedRigState when anything is simulated
    emulator: Any = None  # EmulatedController behind sim://
    renderer: Any = None  # FieldRenderer of the simulated camera
    stage: Callable[[int], None] | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _closed: bool = False

    @property
    def channels(self) -> dict[Modality, int]:
        """Controller channel of each modality."""
        return {m: c.channel for m, c in self.config.lights.channels.items()}

    def move_to(self, fov: int) -> None:
        """Bring field `fov` under the objective (simulated stage; a real stage hook if given)."""
        if self.stage is not None:
            self.stage(fov)
        elif self.state is not None:
            self.state.move_to(fov)

    def close(self) -> None:
        """Lights off, then release everything (idempotent; never raises for cleanup failures)."""
        if self._closed:
            return
        self._closed = True
        self.lights.safe_all_off()
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:
                log.error("closing the rig: %s", exc)

    def __enter__(self) -> Rig:
        self._sigterm = raise_on_sigterm()
        self._sigterm.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        finally:
            self._sigterm.__exit__(None, None, None)


def _simulated_camera(config: RigConfig, state: Any, options: SimulationOptions) -> tuple[Any, Any]:
    from leukoscope.instrument.simulator.camera import SimulatedCamera
    from leukoscope.instrument.simulator.layer_cache import LayerCache
    from leukoscope.instrument.simulator.params import OpticsParams, SampleParams
    from leukoscope.instrument.simulator.render import FieldRenderer
    from leukoscope.instrument.simulator.sample import SimulatedSample

    cam = config.camera
    shape = options.frame_shape
    if shape is None and cam.width and cam.height:
        shape = (cam.height, cam.width)
    params: dict[str, Any] = {"pixel_size_um": cam.pixel_size_um}
    if shape is not None:
        params["frame_shape"] = shape
    if options.wbc_per_field is not None:
        params["wbc_per_field"] = options.wbc_per_field
    optics = OpticsParams(offsets_px=dict(options.offsets_px)) if options.offsets_px else None
    sample = SimulatedSample(seed=options.seed, params=SampleParams(**params))
    renderer = FieldRenderer(sample, optics=optics, layer_cache=LayerCache.from_environment())
    camera = SimulatedCamera(
        renderer,
        state,
        seed=options.seed,
        pixel_format=cam.pixel_format,
        drop_triggers=options.drop_triggers,
        cached_fields=1,  # fields are captured in order: the four lights of one field share it
    )
    return camera, renderer


def _harvesters_camera(config: RigConfig) -> Any:
    from leukoscope.instrument.gentl_devices import default_producers
    from leukoscope.instrument.harvesters_camera import HarvestersCamera

    cam = config.camera
    producers = [cam.producer_path] if cam.producer_path else default_producers()
    camera = HarvestersCamera.open(producers, cam.device_id, strict=cam.strict_nodes)
    try:
        camera.configure(
            pixel_format=cam.pixel_format,
            width=cam.width or None,
            height=cam.height or None,
            software_trigger=True,
        )
    except BaseException:
        camera.close()
        raise
    return camera


def open_rig(
    config: RigConfig, *, simulate: bool = False, options: SimulationOptions | None = None
) -> Rig:
    """Open lights and camera as configured (`simulate`: both simulated, whatever the config says)."""
    options = options or SimulationOptions()
    if simulate:
        config = config.model_copy(deep=True)
        config.lights.port = SIM_PORT
        config.camera.backend = "simulated"
    sim_lights = config.lights.port.startswith(SIM_PORT)
    sim_camera = config.camera.backend == "simulated"
    if not config.lights.port.strip():
        raise ConfigError(NO_RIG)
    if sim_camera and not sim_lights:
        raise ConfigError(
            "rig.camera.backend = simulated needs rig.lights.port = sim:// (the simulated camera "
            "sees the emulated controller's lights); or pass --simulate"
        )
    closers: list[Callable[[], None]] = []
    try:
        state = emulator = renderer = None
        if sim_lights or sim_camera:
            from leukoscope.instrument.simulator.state import SimulatedRigState

            state = SimulatedRigState(
                channel_of={c.channel: m for m, c in config.lights.channels.items()}
            )
        port = config.lights.port
        if sim_lights:
            from leukoscope.instrument.simulator.firmware import EmulatedController

            emulator = EmulatedController(state=state)
            closers.append(emulator.close)
            port = emulator.port
        lights = open_serial_controller(
            port,
            baud=config.lights.baud,
            timeout_s=config.lights.timeout_s,
            retries=config.lights.retries,
        )
        closers.append(lights.close)
        camera: Any
        if sim_camera:
            camera, renderer = _simulated_camera(config, state, options)
        else:
            camera = _harvesters_camera(config)
        closers.append(camera.close)
    except BaseException:
        for closer in reversed(closers):
            try:
                closer()
            except Exception as exc:
                log.error("cleanup after failed rig open: %s", exc)
        raise
    return Rig(
        config=config,
        lights=lights,
        camera=camera,
        simulated_lights=sim_lights,
        simulated_camera=sim_camera,
        state=state,
        emulator=emulator,
        renderer=renderer,
        _closers=closers,
    )

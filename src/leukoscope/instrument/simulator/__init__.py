"""Simulated blood sample, optics and camera, with ground truth (see docs/simulator.md).

Public API (import from the modules; this package imports nothing heavy on its own):

- `sample.SimulatedSample(seed, params.SampleParams(...))`: `.field(fov).cells` -> ground truth
  (`truth.WhiteCell`: index, cell_class, centre_yx, radius_px, bbox, cut_by_border, shape).
- `render.FieldRenderer(sample)`: `.field(fov)` -> noise-free radiance per modality;
  `.offsets_px` -> the known misregistration per modality.
- `camera.SimulatedCamera(renderer, rig_state)` or `SimulatedCamera.create(rig_state, seed=...)`:
  the Camera protocol, lit by `state.SimulatedRigState`.
- `frames.capture_frameset(renderer, sensor.Sensor(), sample_id, fov)` -> FrameSet, no camera loop.
- `dataset.generate_dataset(...)`, `acquisition.generate_acquisition(...)`: the CLI generators.
"""

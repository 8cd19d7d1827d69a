"""Shared pytest configuration.

- The `hardware` marker is skipped unless --hardware is given.
- No test publishes on the production live port (tcp://127.0.0.1:5554): for the whole session the
  live endpoint is off, in this process (the settings' default) and in every process a test starts
  (LEUKOSCOPE__PIPELINE__LIVE_ENDPOINT="" in the environment; `tests.cli_helpers.clean_environ` keeps
  it when a test clears the user's LEUKOSCOPE settings). A test of live publishing names its own
  endpoint, on a port it reserved. A `leukoscope run` beside the suite is neither heard nor disturbed.
- The simulated rig's red-cell layer cache lives in a folder of the session (never the user's).
- Hypothesis runs without deadlines (profile "leukoscope"): a loaded 2-core machine is not a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from leukoscope.config import PipelineConfig, Settings

LIVE_ENDPOINT_ENV = "LEUKOSCOPE__PIPELINE__LIVE_ENDPOINT"

settings.register_profile("leukoscope", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("leukoscope")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", help="run tests that need the real rig")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs the real rig; pass --hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


def _set_live_default(value: str) -> None:
    PipelineConfig.model_fields["live_endpoint"].default = value
    PipelineConfig.model_rebuild(force=True)
    Settings.model_rebuild(force=True)  # its schema holds a copy of PipelineConfig's


@pytest.fixture(autouse=True, scope="session")
def _no_production_live_endpoint() -> Iterator[None]:
    """The live endpoint off for the session: default and environment (see the module docstring)."""
    production = PipelineConfig.model_fields["live_endpoint"].default
    before = os.environ.get(LIVE_ENDPOINT_ENV)
    os.environ[LIVE_ENDPOINT_ENV] = ""
    _set_live_default("")
    try:
        yield
    finally:
        _set_live_default(production)
        if before is None:
            os.environ.pop(LIVE_ENDPOINT_ENV, None)
        else:
            os.environ[LIVE_ENDPOINT_ENV] = before


@pytest.fixture(autouse=True, scope="session")
def _simulator_layer_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The simulated rig's layer cache in a folder of the session, not the user's cache folder
    (LEUKOSCOPE_SIMULATOR_CACHE, for this process and every process a test starts)."""
    name = "LEUKOSCOPE_SIMULATOR_CACHE"
    before = os.environ.get(name)
    os.environ[name] = str(tmp_path_factory.mktemp("simulator_cache"))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before

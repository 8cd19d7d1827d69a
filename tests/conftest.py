"""Shared pytest configuration: the `hardware` marker is skipped unless --hardware is given."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", help="run tests that need the real rig")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs the real rig; pass --hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)

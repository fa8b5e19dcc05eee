"""Shared test settings: CI skips tests marked slow."""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    skip = pytest.mark.skip(reason="slow: skipped when CI=true")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

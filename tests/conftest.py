"""Shared test setup: every test session gets its own, empty cache folder (data/cache is
never read or written by the tests, so a test can neither use nor spoil a real entry) and its
own folder for the stage logs (outputs/logs is never written by the tests)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    names = ("PIPELINE_CACHE_DIR", "PIPELINE_LOG_DIR")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["PIPELINE_CACHE_DIR"] = str(tmp_path_factory.mktemp("pipeline_cache"))
    os.environ["PIPELINE_LOG_DIR"] = str(tmp_path_factory.mktemp("pipeline_logs"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

"""Fixtures for the remote tests: `daemon` is a blit-daemon exporting a fresh module
(tmp_path/module) as `default`, stopped on teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.daemon import Daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    module = tmp_path / "module"
    module.mkdir()
    running = Daemon(module)
    yield running
    running.stop()

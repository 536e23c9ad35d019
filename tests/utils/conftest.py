"""The daemon the blit-utils tests talk to: one per test module, exporting the modules
helpers/admin.py prepares, stopped when the module's tests are done."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.admin import AdminSetup, start


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminSetup]:
    running = start(tmp_path_factory.mktemp("admin"))
    yield running
    running.daemon.stop()

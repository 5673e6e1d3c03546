"""Shared test set-up.

Eight simulated CPU devices are configured before any test touches a device,
so that sharding tests can compare a 1-device mesh with an 8-device mesh in
one process. Everything else runs on the default (first) device as usual.
"""

import pathlib

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 8)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> pathlib.Path:
  """The real validation datasets beside the checkout; skips when absent."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"real datasets not found at {SHARED_DATA} (only present on the dev machine)")
  return SHARED_DATA

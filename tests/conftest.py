"""Shared test set-up.

Eight simulated CPU devices are configured before any test touches a device,
so that sharding tests can compare a 1-device mesh with an 8-device mesh in
one process. Everything else runs on the default (first) device as usual.
"""

import atexit
import os
import pathlib
import shutil
import tempfile

# Under pytest-xdist every worker is its own process with its own XLA thread pool.
# Several multi-threaded pools on a 2-core machine spin against each other (the long
# end-to-end tests ran 3-5x slower side by side than alone), so each worker runs
# XLA on one thread. Must be set before JAX creates its CPU client.
if os.environ.get("PYTEST_XDIST_WORKER") and "XLA_FLAGS" not in os.environ:
  os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

# The tests run the convolutions that `experiments.run` runs (`jaxsim.xla_cpu`).
from jaxsim import xla_cpu  # noqa: E402

xla_cpu.prefer_eigen_convolutions()

# One persistent compilation cache for the whole session, shared by the xdist workers
# (they inherit the variable from the controller, which loads this file first) and by
# the `experiments.run` subprocesses that tests start: tests compile the same programs
# (a task's models, the same small test models) many times over. A cache hit is the
# executable the compiler produced, so results do not change. Removed at exit. Every
# program is kept, however quick its compile: an eager op compiles in 25-35 ms on one
# thread and is read back in a few, and the small tests run hundreds of them in each
# worker and each subprocess (four test files: 95 s with a 0.2 s floor, 88 s without,
# two runs each, 2-core machine).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="jaxsim-test-xla-cache-")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)

import jax  # noqa: E402
import pytest  # noqa: E402

from jaxsim import parallel  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)

# The longest end-to-end tests, longest first (by `--durations` of a full run under
# xdist on a 2-core machine, 2026-11-29). They start first so that the short tests fill the other
# worker while they run, instead of all of them queueing at the end of the run.
LONG_TESTS = (
  "task_face_fp_test.py::test_runlocal_end_to_end",
  "task_similarity_search_test.py::test_runlocal_end_to_end_on_generated_tll_files",
  "task_omniglot_test.py::test_runlocal_on_the_real_background_set",
  "task_omniglot_test.py::test_task_end_to_end_on_a_constructed_alphabet_zip",
  "task_face_verify_test.py::test_runlocal_end_to_end",
  "task_mnist_text_test.py::test_runlocal_end_to_end",
  "checkpoint_test.py::test_sigkill_then_resume_equals_uninterrupted_run_bitwise",
  "parallel_test.py::test_two_processes_match_one_process",
  "task_open_set_test.py::test_runlocal_end_to_end_and_resume",
)


def pytest_collection_modifyitems(config, items):
  rank = {name: i for i, name in enumerate(LONG_TESTS)}

  def key(item):
    name = item.nodeid.split("/")[-1]
    return rank.get(name, len(rank))

  items.sort(key=key)  # stable: the rest keep their collection order


@pytest.fixture(autouse=True)
def _tasks_train_on_one_device(request, monkeypatch):
  """End-to-end task tests train on one device, as a CPU user's run does.

  The session has 8 simulated devices for the sharding tests. On those a task's step is
  split 8 ways on a single XLA thread, with collectives after each layer's batch norm, and
  the task tests ran 2-3x slower than on one device. Sharded training is covered by
  `train_test` (one device against eight, same step) and `parallel_test` (two processes
  against one); here `train.fit`'s default mesh is one device.
  """
  if not request.node.path.name.startswith("task_"):
    return
  all_devices = parallel.data_mesh

  def one_device_by_default(devices=None):
    return all_devices(jax.devices()[:1] if devices is None else devices)

  monkeypatch.setattr(parallel, "data_mesh", one_device_by_default)


SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> pathlib.Path:
  """The real validation datasets beside the checkout; skips when absent."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"real datasets not found at {SHARED_DATA} (only present on the dev machine)")
  return SHARED_DATA

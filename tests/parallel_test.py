"""Meshes, batch sharding, and a two-process training run on localhost."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxsim import parallel

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_data_mesh_is_one_auto_axis_over_all_devices():
  mesh = parallel.data_mesh()
  assert mesh.axis_names == ("data",)
  assert mesh.size == len(jax.devices()) == 8
  assert mesh.axis_types == (jax.sharding.AxisType.Auto,)
  assert parallel.data_mesh(jax.devices()[:1]).size == 1


def test_shard_batch_splits_leading_axis():
  mesh = parallel.data_mesh()
  batch = {"image": np.arange(16 * 3, dtype=np.float32).reshape(16, 3), "label": np.arange(16)}
  out = parallel.shard_batch(batch, mesh)
  assert out["image"].shape == (16, 3)
  assert out["image"].sharding.spec == jax.sharding.PartitionSpec("data")
  shards = sorted(out["label"].addressable_shards, key=lambda s: s.index[0].start)
  assert [s.data.shape[0] for s in shards] == [2] * 8
  np.testing.assert_array_equal(np.asarray(out["image"]), batch["image"])


def test_indivisible_global_batch_is_a_clear_error():
  with pytest.raises(ValueError, match="12 is not divisible by the 8 devices"):
    parallel.shard_batch({"image": np.zeros((12, 2))}, parallel.data_mesh())


def test_unequal_leading_sizes_rejected():
  with pytest.raises(ValueError, match="same leading"):
    parallel.shard_batch({"a": np.zeros((8, 2)), "b": np.zeros((4,))}, parallel.data_mesh())


def test_replicate_places_full_copies():
  mesh = parallel.data_mesh()
  x = parallel.replicate({"w": np.ones((3,))}, mesh)["w"]
  assert x.sharding.is_fully_replicated and len(x.addressable_shards) == 8


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _load(path):
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
  """launch.sh local --processes 2 (gloo CPU collectives, 1 device each, 4 rows per process)
  trains to the same parameters as one process with 2 devices and the same global batch."""
  env = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": str(REPO),
    "JAXSIM_MODULE": "tests._train_worker",
    "JAXSIM_PORT": str(_free_port()),
  }
  env.pop("XLA_FLAGS", None)
  common = ["--steps=6", "--checkpoint_every=3", "--batch_size=8"]
  multi = subprocess.Popen(
    [
      str(REPO / "launch.sh"),
      "local",
      "--processes",
      "2",
      "--",
      f"--workdir={tmp_path / 'multi'}",
      f"--out={tmp_path / 'multi.npz'}",
      *common,
    ],
    cwd=REPO,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  single = subprocess.run(
    [
      sys.executable,
      "-m",
      "tests._train_worker",
      "--devices=2",
      f"--workdir={tmp_path / 'single'}",
      f"--out={tmp_path / 'single.npz'}",
      *common,
    ],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  out, _ = multi.communicate(timeout=300)
  assert single.returncode == 0, single.stderr[-3000:]
  assert multi.returncode == 0, out[-3000:]
  a, b = _load(tmp_path / "multi.npz"), _load(tmp_path / "single.npz")
  assert a.keys() == b.keys()
  for k in a:
    if k != "metrics":
      np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
  ma, mb = json.loads(str(a["metrics"])), json.loads(str(b["metrics"]))
  np.testing.assert_allclose(ma["last"]["loss"], mb["last"]["loss"], rtol=1e-5)
  # Only process 0 writes the log: one record per step, not two.
  steps = [json.loads(line)["step"] for line in (tmp_path / "multi" / "train_log.jsonl").open()]
  assert steps == sorted(set(steps)) and steps[-1] == 6
  # Each process saved its own data-iterator state.
  data_dir = tmp_path / "multi" / "checkpoints" / "6" / "data"
  assert sorted(p.name for p in data_dir.glob("process_*")) == [
    "process_0-of-2.json",
    "process_1-of-2.json",
  ]

"""Checkpoints: state and Grain iterator round trip, retention, and exact resume after SIGKILL."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _train_worker import train_iterator

from jaxsim import checkpoint, parallel

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_state_and_iterator_round_trip(tmp_path):
  mesh = parallel.data_mesh(jax.devices()[:2])
  state = parallel.replicate(
    {"step": jnp.int32(3), "params": {"w": jnp.arange(6.0).reshape(2, 3)}, "batch_stats": {}}, mesh
  )
  it = train_iterator(8, 0, 1)
  for _ in range(3):
    next(it)
  ckpt = checkpoint.Checkpointer(tmp_path, save_every=1)
  assert ckpt.save(3, state, it)
  ckpt.wait()
  expected = [next(it) for _ in range(2)]
  fresh = train_iterator(8, 0, 1)
  template = jax.tree.map(jnp.zeros_like, state)
  restored = checkpoint.Checkpointer(tmp_path, save_every=1).restore(3, template, fresh)
  np.testing.assert_array_equal(restored["params"]["w"], np.arange(6.0).reshape(2, 3))
  assert int(restored["step"]) == 3 and restored["batch_stats"] == {}
  assert restored["params"]["w"].sharding == template["params"]["w"].sharding
  for want in expected:  # the restored iterator continues where the saved one stood
    got = next(fresh)
    np.testing.assert_array_equal(got["image"], want["image"])


@pytest.mark.parametrize("mode,best", [("max", 2), ("min", 3)])
def test_keeps_latest_k_and_best(tmp_path, mode, best):
  ckpt = checkpoint.Checkpointer(
    tmp_path, save_every=1, keep=2, best_metric="auc", best_mode=mode, async_save=False
  )
  auc = {1: 0.5, 2: 0.9, 3: 0.1, 4: 0.6, 5: None, 6: 0.7}
  for step, value in auc.items():
    ckpt.save(step, {"w": jnp.full(2, step)}, metrics=None if value is None else {"auc": value})
  ckpt.wait()
  assert ckpt.all_steps() == sorted({5, 6, best})
  assert ckpt.best_step() == best and ckpt.latest_step() == 6


def test_bad_options_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="best_mode"):
    checkpoint.Checkpointer(tmp_path, save_every=1, best_mode="largest")
  with pytest.raises(ValueError, match="save_every"):
    checkpoint.Checkpointer(tmp_path, save_every=0)


def _worker(workdir, out, *extra):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
  env.pop("XLA_FLAGS", None)
  return [
    sys.executable,
    "-m",
    "tests._train_worker",
    f"--workdir={workdir}",
    f"--out={out}",
    "--steps=16",
    "--checkpoint_every=4",
    *extra,
  ], env


def _load(path):
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run_bitwise(tmp_path):
  ref_cmd, env = _worker(tmp_path / "ref", tmp_path / "ref.npz")
  reference = subprocess.Popen(
    ref_cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
  )
  cmd, env = _worker(tmp_path / "run", tmp_path / "run.npz", "--step_delay=0.4")
  victim = subprocess.Popen(
    cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  seen = []
  for line in victim.stdout:
    seen.append(line)
    if line.startswith("step 10/16"):
      victim.send_signal(signal.SIGKILL)
      break
  victim.wait(timeout=60)
  assert victim.returncode == -signal.SIGKILL, "".join(seen[-20:])
  assert not (tmp_path / "run.npz").exists()
  cmd, env = _worker(tmp_path / "run", tmp_path / "run.npz")
  resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  _, ref_err = reference.communicate(timeout=300)
  assert reference.returncode == 0, ref_err[-3000:]

  a, b = _load(tmp_path / "run.npz"), _load(tmp_path / "ref.npz")
  ma, mb = json.loads(str(a.pop("metrics"))), json.loads(str(b.pop("metrics")))
  assert ma["resumed_from"] == 8 and mb["resumed_from"] == 0
  assert a.keys() == b.keys()
  for k in a:  # bitwise: same program, same inputs, same order on CPU
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  assert ma["last"] == mb["last"] and ma["eval"] == mb["eval"]
  assert ma["best_step"] == mb["best_step"]

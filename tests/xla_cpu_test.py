"""jaxsim.xla_cpu: which XLA flag the entry points add, and that XLA takes it."""

import os
import subprocess
import sys

import pytest

from jaxsim import xla_cpu


def test_the_flag_is_added_once_and_never_over_a_users_choice(monkeypatch):
  monkeypatch.setattr(xla_cpu, "backend_started", lambda: False)
  monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: xla_cpu.TESTED_JAXLIB[0])
  env = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
  assert xla_cpu.prefer_eigen_convolutions(env)
  assert env["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false " + xla_cpu.EIGEN_CONVOLUTIONS
  assert not xla_cpu.prefer_eigen_convolutions(env)  # already there
  empty = {}
  assert (
    xla_cpu.prefer_eigen_convolutions(empty) and empty["XLA_FLAGS"] == xla_cpu.EIGEN_CONVOLUTIONS
  )
  mine = {"XLA_FLAGS": f"{xla_cpu.YNN_FLAG}=eltwise"}
  assert not xla_cpu.prefer_eigen_convolutions(mine)
  assert mine["XLA_FLAGS"] == f"{xla_cpu.YNN_FLAG}=eltwise"
  opted_out = {"JAXSIM_YNN_CONVOLUTIONS": "1"}
  assert not xla_cpu.prefer_eigen_convolutions(opted_out) and "XLA_FLAGS" not in opted_out
  monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: xla_cpu.TESTED_JAXLIB[1])
  assert not xla_cpu.prefer_eigen_convolutions({})  # an untested jaxlib: left alone
  monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: xla_cpu.TESTED_JAXLIB[0])
  monkeypatch.setattr(xla_cpu, "backend_started", lambda: True)
  assert not xla_cpu.prefer_eigen_convolutions({})  # too late to matter


_PROGRAM = """
import os, jax, jax.numpy as jnp
from jax import lax
from jaxsim import xla_cpu
added = xla_cpu.prefer_eigen_convolutions()
x, w = jnp.ones((8, 16, 16, 32)), jnp.ones((3, 3, 32, 32))
f = jax.jit(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC")))
text = f.lower(x, w).compile().as_text()
print(added, "__ynn_fusion" in text, float(f(x, w)[0, 4, 4, 0]))
"""


@pytest.mark.skipif(
  not xla_cpu.TESTED_JAXLIB[0] <= xla_cpu._jaxlib_version() < xla_cpu.TESTED_JAXLIB[1],
  reason="the flag is applied only on the jaxlib versions it was checked with",
)
def test_xla_accepts_the_flag_and_moves_convolutions_out_of_ynnpack():
  def run(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    env.update(JAX_PLATFORMS="cpu", **extra)
    out = subprocess.run(
      [sys.executable, "-c", _PROGRAM], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()

  # The flag parses (an unknown one would abort the process) and the convolution leaves
  # YNNPACK; with the opt-out it stays there (jaxlib's default). Same value either way.
  assert run() == ["True", "False", "288.0"]
  assert run(JAXSIM_YNN_CONVOLUTIONS="1") == ["False", "True", "288.0"]

"""jaxsim.profiling: exclusive phase times, compilation split out, instrumentation."""

import time
import types

import jax
import jax.numpy as jnp
import pytest

from jaxsim import profiling


@pytest.fixture
def recording():
  profiling.enable()
  yield
  profiling.disable()
  profiling.reset()


def test_phases_are_exclusive_and_compilation_is_its_own_row(recording):
  with profiling.phase("outer"):
    time.sleep(0.05)
    with profiling.phase("inner"):
      time.sleep(0.4)
      # JAX reports 0.3 s of XLA compilation inside "inner": it is not inner's time.
      jax.monitoring.record_event_duration_secs("/jax/core/compile/backend_compile_duration", 0.3)
  with profiling.phase("compiles"):
    # A fresh program (a shape no other test uses) compiles: a real event is counted.
    jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.0)(jnp.ones((7, 13, 3))).block_until_ready()
  rows = profiling.breakdown(10.0, rest="rest")
  assert rows["inner"]["seconds"] == pytest.approx(0.1, abs=0.08)
  assert rows["outer"]["seconds"] == pytest.approx(0.05, abs=0.04)
  assert rows[profiling.COMPILE]["seconds"] > 0.3 and rows[profiling.COMPILE]["calls"] >= 2
  total = sum(r["seconds"] for r in rows.values())
  assert total == pytest.approx(10.0)
  assert rows["rest"]["share"] == pytest.approx(rows["rest"]["seconds"] / 10.0)
  assert list(rows) == sorted(rows, key=lambda k: -rows[k]["seconds"])
  assert "| inner |" in profiling.table(rows)


def test_disabled_records_nothing():
  profiling.reset()
  with profiling.phase("x"):
    pass
  assert list(profiling.breakdown(1.0)) == ["other"]


def test_instrument_wraps_module_functions_once(recording):
  module = types.SimpleNamespace(load_x=lambda: time.sleep(0.02) or 5)
  profiling.instrument({"data": [(module, "load_x"), (module, "missing")]})
  first = module.load_x
  profiling.instrument({"data": [(module, "load_x")]})
  assert module.load_x is first and module.load_x() == 5
  assert profiling.breakdown(1.0)["data"]["calls"] == 1

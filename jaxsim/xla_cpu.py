"""XLA:CPU settings that jaxsim's entry points apply before JAX starts its CPU backend.

jaxlib 0.10 hands most convolutions to YNNPACK (`--xla_cpu_experimental_ynn_fusion_type`
includes `individual_convolution` by default). On the 2-core AMD EPYC (Zen 4) this
project measures on, YNNPACK's convolutions and the layout transposes around their
weight gradients made a ResNet-18 tower's forward and backward pass at 128x128 (batch
64) take about twice as long as XLA's own (Eigen) convolutions: 1.80-2.18 s against
0.85-1.11 s, and PyTorch's oneDNN 1.15-1.27 s (README, Performance). Summed over a
tower's layers, Eigen's forward and both gradients were at or below PyTorch's. So
`prefer_eigen_convolutions` takes convolutions out of YNNPACK's fusion types and leaves
the other types (dots, elementwise, reductions) as jaxlib ships them.

The choice changes which kernel computes a convolution, so results differ from
YNNPACK's in the last bits (float sums in another order), not in what is computed.
"""

from __future__ import annotations

import os

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
EIGEN_CONVOLUTIONS = f"{YNN_FLAG}=-individual_convolution"
# jaxlib versions checked to know the flag and its "-type" (remove one type) syntax
# (0.10.2; tests/xla_cpu_test.py): an unknown flag in XLA_FLAGS aborts the process, so
# other versions are left alone until checked.
TESTED_JAXLIB = ((0, 10), (0, 11))


def _jaxlib_version() -> tuple[int, ...]:
  try:
    import jaxlib.version  # noqa: PLC0415

    return tuple(int(p) for p in jaxlib.version.__version__.split(".")[:2])
  except (ImportError, ValueError):
    return ()


def backend_started() -> bool:
  """Whether JAX has created its backends (XLA_FLAGS is read once, at that moment)."""
  try:
    from jax._src import xla_bridge  # noqa: PLC0415

    return bool(xla_bridge.backends_are_initialized())
  except (ImportError, AttributeError):
    return False


def prefer_eigen_convolutions(environ: dict | None = None) -> bool:
  """Adds `EIGEN_CONVOLUTIONS` to `$XLA_FLAGS`; returns whether it did.

  Nothing changes when `$XLA_FLAGS` already sets the YNNPACK fusion types (yours win),
  when `$JAXSIM_YNN_CONVOLUTIONS=1` (keep jaxlib's default), when the installed jaxlib
  is outside `TESTED_JAXLIB`, or when JAX's backend already exists (too late: the flags
  are read when it starts). Call it before the first JAX computation.
  """
  env = os.environ if environ is None else environ
  flags = env.get("XLA_FLAGS", "")
  if YNN_FLAG in flags or env.get("JAXSIM_YNN_CONVOLUTIONS") == "1":
    return False
  low, high = TESTED_JAXLIB
  if not low <= _jaxlib_version() < high or backend_started():
    return False
  env["XLA_FLAGS"] = f"{flags} {EIGEN_CONVOLUTIONS}".strip()
  return True

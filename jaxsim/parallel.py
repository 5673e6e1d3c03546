"""Distributed runtime, device meshes and shardings (the only module that builds them)."""

from __future__ import annotations

import os

import jax


def initialize_distributed() -> None:
  """Calls `jax.distributed.initialize()`; must run before any device is used.

  On SLURM, TPU pod slices, MPI and Kubernetes JAX detects the coordinator,
  process count and process id itself. Elsewhere set
  `JAX_COORDINATOR_ADDRESS=host:port`, `JAXSIM_NUM_PROCESSES` and
  `JAXSIM_PROCESS_ID` (for example to start several processes on localhost).
  """
  kwargs = {}
  if "JAXSIM_NUM_PROCESSES" in os.environ:
    kwargs["num_processes"] = int(os.environ["JAXSIM_NUM_PROCESSES"])
  if "JAXSIM_PROCESS_ID" in os.environ:
    kwargs["process_id"] = int(os.environ["JAXSIM_PROCESS_ID"])
  jax.distributed.initialize(**kwargs)

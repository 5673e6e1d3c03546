"""Distributed runtime, device meshes and shardings (the only module that builds them).

jaxsim is data-parallel over a one-dimensional mesh with axis `data`: the
train state is replicated, every batch is sharded on its leading axis, and
`jax.jit` partitions the step (GSPMD), so a reduction over the batch axis
(the mean loss, batch-norm statistics, in-batch negatives) covers the global
batch with no explicit collective. The same code runs on one CPU, a GPU node
and a TPU pod slice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed() -> None:
  """Calls `jax.distributed.initialize()`; must run before any device is used.

  On SLURM, TPU pod slices, MPI and Kubernetes JAX detects the coordinator,
  process count and process id itself. Elsewhere set
  `JAX_COORDINATOR_ADDRESS=host:port`, `JAXSIM_NUM_PROCESSES` and
  `JAXSIM_PROCESS_ID` (for example to start several processes on localhost).
  On CPU the cross-process collectives use gloo (JAX's default
  `jax_cpu_collectives_implementation`).
  """
  kwargs = {}
  if "JAXSIM_NUM_PROCESSES" in os.environ:
    kwargs["num_processes"] = int(os.environ["JAXSIM_NUM_PROCESSES"])
  if "JAXSIM_PROCESS_ID" in os.environ:
    kwargs["process_id"] = int(os.environ["JAXSIM_PROCESS_ID"])
  jax.distributed.initialize(**kwargs)


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh with axis `data` over `devices` (default: all devices of all processes)."""
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("data_mesh needs at least one device")
  return jax.make_mesh(
    (len(devices),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
  )


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding that keeps a full copy of an array on every device of `mesh`."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding that splits the leading (batch) axis over the `data` axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_global_batch(global_batch: int, mesh: Mesh) -> None:
  """Raises ValueError unless the global batch divides evenly over the mesh."""
  if global_batch % mesh.size:
    raise ValueError(
      f"global batch size {global_batch} is not divisible by the {mesh.size} devices of the "
      f"'{DATA_AXIS}' mesh; choose a batch size that is a multiple of {mesh.size}"
    )


def shard_batch(batch: Mapping[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
  """Turns this process's part of a batch into global arrays sharded over `data`.

  Args:
    batch: dict of numpy arrays whose leading axis is this process's rows of
      the global batch (all of it in a single-process run). Processes hold
      consecutive, equal slices: process p holds rows [p * n, (p + 1) * n).

  Returns:
    Dict of `jax.Array` of global leading size n * process_count, sharded on
    their leading axis.
  """
  sharding = batch_sharding(mesh)
  sizes = {k: np.shape(v)[0] if np.ndim(v) else None for k, v in batch.items()}
  if None in sizes.values() or len(set(sizes.values())) != 1:
    raise ValueError(f"every batch entry needs the same leading (batch) size, got {sizes}")
  local = next(iter(sizes.values()))
  check_global_batch(local * jax.process_count(), mesh)
  return {
    k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()
  }


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every leaf of `tree` fully replicated on `mesh` (host values are copied)."""
  return jax.device_put(tree, replicated(mesh))

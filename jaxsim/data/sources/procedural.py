"""What the procedural sources share: identities x images, seeded identity latents.

`SyntheticFaces` and `SyntheticFingerprints` render record `i` as image
`i % images_per_identity` of identity `i // images_per_identity` from a per-identity
latent (seeded, or given so that two sources can share one) and per-image nuisance.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import multiprocessing
import os
from collections.abc import Callable

import numpy as np

_log = logging.getLogger(__name__)


class ProceduralSource:
  """Checks and stores the identity layout and latents of a procedural source.

  Subclasses set `modality`, `latent_dim`, `min_image_size` and `identity_latent`
  (seed, identity -> [latent_dim]) and render images in `__getitem__`.
  """

  modality = "generic"
  latent_dim: int
  min_image_size = 8
  identity_latent: Callable[[int, int], np.ndarray]

  def __init__(
    self,
    num_identities: int,
    images_per_identity: int,
    *,
    image_size: int,
    difficulty: float,
    seed: int,
    latents: np.ndarray | None,
  ):
    name = type(self).__name__
    if num_identities < 1 or images_per_identity < 1:
      raise ValueError(
        f"{name} needs at least 1 identity and 1 image per identity, got "
        f"{num_identities} and {images_per_identity}"
      )
    if image_size < self.min_image_size:
      raise ValueError(f"{name} image_size must be >= {self.min_image_size}, got {image_size}")
    if difficulty < 0:
      raise ValueError(f"{name} difficulty must be >= 0, got {difficulty}")
    self.num_identities = int(num_identities)
    self.images_per_identity = int(images_per_identity)
    self.image_size = int(image_size)
    self.difficulty = float(difficulty)
    self.seed = int(seed)
    if latents is None:
      latents = np.stack([type(self).identity_latent(self.seed, i) for i in range(num_identities)])
    latents = np.asarray(latents, np.float64)
    if latents.shape != (self.num_identities, self.latent_dim):
      raise ValueError(
        f"latents must have shape ({self.num_identities}, {self.latent_dim}), got {latents.shape}"
      )
    self.latents = latents
    self.identities = np.repeat(np.arange(self.num_identities), self.images_per_identity)

  def __len__(self) -> int:
    return self.num_identities * self.images_per_identity

  def render(self, workers: int = 1) -> np.ndarray:
    """Every image of the source, [N, H, W, C] in record order.

    With `workers` > 1 the identities are split into chunks rendered in that many
    worker processes (0: one per CPU core). Every image is seeded by its identity and
    number, so the result is the same array for any number of workers (tested).
    """
    if workers == 0:
      workers = os.cpu_count() or 1
    if workers < 1:
      raise ValueError(f"workers must be >= 0 (0: one per CPU core), got {workers}")
    if workers == 1 or self.num_identities < 4 * workers:
      return _render_identities(self, range(self.num_identities))
    # A few chunks per worker keep both busy to the end; whole identities, so that a
    # source that caches per-identity work (fingerprint masters) renders it once.
    chunks = np.array_split(np.arange(self.num_identities), 4 * workers)
    try:
      parts = _pool(workers).map(_render_identities, [self] * len(chunks), chunks)
      return np.concatenate(list(parts))
    except concurrent.futures.process.BrokenProcessPool as err:
      # A worker died: out of memory, or a `__main__` that a spawned process cannot
      # import (code read from stdin). The images do not depend on where they render.
      _log.warning("rendering in worker processes failed (%s); rendering here instead", err)
      _shutdown_pool()
      return _render_identities(self, range(self.num_identities))

  def _locate(self, index: int) -> tuple[int, int]:
    """(identity, image number) of record `index`, with a clear error out of range."""
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} out of range for {len(self)} {self.modality} images")
    return divmod(index, self.images_per_identity)


def _render_identities(source: ProceduralSource, identities) -> np.ndarray:
  per = source.images_per_identity
  return np.stack([source[int(i) * per + k]["image"] for i in identities for k in range(per)])


_POOL: tuple[int, concurrent.futures.ProcessPoolExecutor] | None = None


def _pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
  """One pool of `workers` processes, kept for the run: starting a worker imports
  jaxsim (about 1.7 s), and face_fp renders six datasets. "spawn", because forking a
  process that runs JAX's threads can deadlock."""
  global _POOL
  if _POOL is None or _POOL[0] != workers:
    if _POOL is not None:
      _POOL[1].shutdown()
    context = multiprocessing.get_context("spawn")
    _POOL = (workers, concurrent.futures.ProcessPoolExecutor(workers, mp_context=context))
  return _POOL[1]


@atexit.register
def _shutdown_pool() -> None:
  global _POOL
  if _POOL is not None:
    _POOL[1].shutdown(cancel_futures=True)
    _POOL = None

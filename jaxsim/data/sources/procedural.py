"""What the procedural sources share: identities x images, seeded identity latents.

`SyntheticFaces` and `SyntheticFingerprints` render record `i` as image
`i % images_per_identity` of identity `i // images_per_identity` from a per-identity
latent (seeded, or given so that two sources can share one) and per-image nuisance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


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

  def _locate(self, index: int) -> tuple[int, int]:
    """(identity, image number) of record `index`, with a clear error out of range."""
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} out of range for {len(self)} {self.modality} images")
    return divmod(index, self.images_per_identity)

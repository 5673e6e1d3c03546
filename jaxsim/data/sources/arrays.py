"""In-memory sources: images (and paired images) already decoded into arrays."""

from __future__ import annotations

import numpy as np


class ArrayImageSource:
  """Random-access source over in-memory images [N, H, W, C] float32 and labels [N].

  Records: `{"image": float32 [H, W, C] in [0, 1], "identity": int32}`.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray, *, modality: str = "digit"):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or labels.shape != (images.shape[0],):
      raise ValueError(
        f"ArrayImageSource needs images [N, H, W, C] and labels [N], got {images.shape} "
        f"and {labels.shape}"
      )
    self.images = images.astype(np.float32, copy=False)  # no second copy of float32 data
    self.identities = labels.astype(np.int64)
    self.modality = modality

  def __len__(self) -> int:
    return len(self.identities)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {"image": self.images[index], "identity": np.int32(self.identities[index])}


class ArrayPairSource:
  """Random-access source over in-memory paired images: two modalities, or left/right.

  Records: `{"image_a": float32 [H, W, Ca], "image_b": float32 [H, W, Cb],
  "identity": int32}`; row i of both arrays belongs to subject `identities[i]`.
  """

  def __init__(
    self,
    images_a: np.ndarray,
    images_b: np.ndarray,
    identities: np.ndarray,
    *,
    modalities: tuple[str, str] = ("generic", "generic"),
  ):
    images_a, images_b = np.asarray(images_a), np.asarray(images_b)
    identities = np.asarray(identities)
    if (
      images_a.ndim != 4
      or images_b.ndim != 4
      or not (len(images_a) == len(images_b) == len(identities))
    ):
      raise ValueError(
        f"ArrayPairSource needs images_a [N, H, W, C], images_b [N, H, W, C] and identities "
        f"[N], got {images_a.shape}, {images_b.shape} and {identities.shape}"
      )
    self.images_a = images_a.astype(np.float32)
    self.images_b = images_b.astype(np.float32)
    self.identities = identities.astype(np.int64)
    self.modalities = tuple(modalities)

  def __len__(self) -> int:
    return len(self.identities)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {
      "image_a": self.images_a[index],
      "image_b": self.images_b[index],
      "identity": np.int32(self.identities[index]),
    }

  def source_a(self) -> ArrayImageSource:
    """Modality A alone, as a single-image source with the same identities."""
    return ArrayImageSource(self.images_a, self.identities, modality=self.modalities[0])

  def source_b(self) -> ArrayImageSource:
    """Modality B alone, as a single-image source with the same identities."""
    return ArrayImageSource(self.images_b, self.identities, modality=self.modalities[1])

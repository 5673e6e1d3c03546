"""TensorFlow Datasets adapters for datasets already prepared on disk (never downloads).

`tfds_source("mnist", split="test", data_dir=...)` opens a dataset prepared in the
`array_record` (or `parquet`) file format through `tfds.builder(...).as_data_source`,
which works without TensorFlow. It needs the `tfds` extra
(`pip install 'jaxsim[tfds]'`), imported only when called. It never downloads: a
dataset that is not prepared under `data_dir`, or prepared only as TFRecord, raises
a clear error saying how to prepare it.

Records: `{"image": float32 [H, W, C] in [0, 1], "identity": int32}`; string labels
(e.g. LFW person names) become ids in sorted name order (`identity_names`). Building
`identities` reads every record once (TFDS has no label-only column access).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_PREPARE_HINT = (
  "Prepare it on a machine with network access and copy the folder over, e.g. "
  "`tfds build {name} --file_format=array_record --data_dir=DIR`, then pass data_dir=DIR."
)


def _import_tfds():
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise ImportError(
      "reading TFDS datasets needs tensorflow-datasets: pip install 'jaxsim[tfds]' "
      "(TensorFlow itself is not needed for prepared array_record data)"
    ) from e
  return tfds


class TfdsSource:
  """A prepared TFDS split as a random-access image source (see module docstring).

  Args:
    name: TFDS name, e.g. "mnist", "lfw", "omniglot".
    split: split name, e.g. "train", "test".
    data_dir: the TFDS data directory holding the prepared dataset.
    image_key, label_key: feature names of the image and of the identity label.
    image_size: optional resize target (int or (H, W)); None keeps the stored size.
    modality: picks augmentations ("digit", "face", ...).
  """

  def __init__(
    self,
    name: str,
    *,
    split: str = "train",
    data_dir: str | None = None,
    image_key: str = "image",
    label_key: str = "label",
    image_size=None,
    modality: str = "generic",
  ):
    tfds = _import_tfds()
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
      raise FileNotFoundError(
        f"TFDS dataset {name!r} is not prepared under data_dir={data_dir!r} (looked in "
        f"{builder.data_dir}); jaxsim never downloads. " + _PREPARE_HINT.format(name=name)
      )
    try:
      source = builder.as_data_source(split=split)
    except NotImplementedError as e:
      raise ValueError(
        f"TFDS dataset {name!r} under {builder.data_dir} is prepared in a format without "
        "random access (TFRecord). " + _PREPARE_HINT.format(name=name)
      ) from e
    if isinstance(source, dict) or source is None or len(source) == 0:
      raise FileNotFoundError(
        f"TFDS dataset {name!r} has no records for split {split!r} under {builder.data_dir}. "
        + _PREPARE_HINT.format(name=name)
      )
    self.source = source
    self.image_key, self.label_key = image_key, label_key
    self.image_size = (image_size, image_size) if isinstance(image_size, int) else image_size
    self.modality = modality
    labels = [source[i][label_key] for i in range(len(source))]
    if isinstance(labels[0], bytes | str):
      names = [lab.decode() if isinstance(lab, bytes) else lab for lab in labels]
      self.identity_names = sorted(set(names))
      lookup = {n: i for i, n in enumerate(self.identity_names)}
      self.identities = np.array([lookup[n] for n in names], np.int64)
    else:
      self.identities = np.asarray(labels, np.int64)
      self.identity_names = [str(i) for i in np.unique(self.identities)]

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    image = np.asarray(self.source[int(index)][self.image_key])
    if self.image_size is not None and image.shape[:2] != tuple(self.image_size):
      h, w = self.image_size
      squeezed = image[..., 0] if image.shape[-1] == 1 else image
      image = np.asarray(Image.fromarray(squeezed).resize((w, h), Image.BILINEAR))
      image = image[..., None] if image.ndim == 2 else image
    image = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    return {"image": image, "identity": np.int32(self.identities[index])}


def tfds_source(name: str, **kwargs) -> TfdsSource:
  """Opens a prepared TFDS dataset; see `TfdsSource`."""
  return TfdsSource(name, **kwargs)

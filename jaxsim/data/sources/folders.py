"""Real images from disk: identity folders, flat name-pattern folders and paired layouts.

Supported files: PNG, JPEG, BMP, TIFF and PGM/PPM/PNM (anything Pillow opens;
8-bit and 16-bit greyscale, RGB, palette). Every image is decoded to float32 in
[0, 1], converted to `channels` (1 = greyscale, 3 = RGB), optionally centre-cropped
to `crop_fraction` of each side, and resized to `image_size` with bilinear
interpolation, so records are `{"image": float32 [H, W, C], "identity": int32}`.

Identity ids are the positions of the identity names in sorted order; the names are
in `source.identity_names`.

Nothing is left out silently: files without an image extension (`notes.txt`,
`11.PGM.bak`) are listed in `source.non_image_files` and counted in the source's repr
and a warning; with `skip_corrupt=True` unreadable images are listed in
`source.skipped_files`. Both also go to a process-wide record (`skipped_files()`), which
`experiments.run` writes to metrics.json as `data_files`.

Layouts:
- `identity_folder_source(root)`: `root/<identity>/<image>` (ORL faces: `sN/K.pgm`).
- `flat_folder_source(roots, pattern)`: identity from a regular expression on the
  file stem; `fvc2002_source(root)` uses it for FVC `DBn_B/<finger>_<k>.tif`, with
  the identity key (DB, finger) named "DB1_B/101".
- `paired_stem_source(root)`: `root/face/<stem>` and `root/fingerprint/<stem>`
  with the same stems (the layout of the first source project).
- `paired_identity_folder_source(root)`: `root/face/<id>/*` and
  `root/fingerprint/<id>/*`, paired by identity name.
"""

from __future__ import annotations

import pathlib
import re
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm")


class ImageDecodeError(ValueError):
  """An image file could not be read; the message names the file."""


# Files left out by the sources built in this process, for the run's metrics.json: the
# sources are built deep inside the tasks, which return only metrics.
_LEFT_OUT: dict[str, list[str]] = {"unreadable": [], "non_image": []}


def clear_skipped_files() -> None:
  """Empties the record read by `skipped_files` (call before loading a run's data)."""
  for names in _LEFT_OUT.values():
    names.clear()


def skipped_files() -> dict[str, int | list[str]]:
  """The files left out since `clear_skipped_files`, or {} if none.

  Returns:
    `{"num_unreadable", "unreadable", "num_non_image", "non_image"}` (paths as strings).
  """
  if not any(_LEFT_OUT.values()):
    return {}
  unreadable, non_image = sorted(set(_LEFT_OUT["unreadable"])), sorted(set(_LEFT_OUT["non_image"]))
  return {
    "num_unreadable": len(unreadable),
    "unreadable": unreadable,
    "num_non_image": len(non_image),
    "non_image": non_image,
  }


def _image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
  if isinstance(image_size, int):
    return (image_size, image_size)
  h, w = image_size
  return (int(h), int(w))


def decode_image(
  path: str | pathlib.Path,
  *,
  image_size: int | Sequence[int] = 64,
  channels: int = 1,
  crop_fraction: float = 1.0,
) -> np.ndarray:
  """Decodes one image file to float32 [H, W, channels] in [0, 1].

  Raises:
    ImageDecodeError: the file is missing, unreadable or not an image.
  """
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels}")
  if not 0.0 < crop_fraction <= 1.0:
    raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
  h, w = _image_size(image_size)
  try:
    with Image.open(path) as im:
      im.load()
      if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale by the type's range before going to 8 bits.
        arr = np.asarray(im, dtype=np.float64)
        scale = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        im = Image.fromarray(np.clip(arr / scale * 255.0, 0, 255).astype(np.uint8))
      im = im.convert("L" if channels == 1 else "RGB")
      if crop_fraction < 1.0:
        cw, ch = im.width * crop_fraction, im.height * crop_fraction
        left, top = (im.width - cw) / 2, (im.height - ch) / 2
        im = im.crop((round(left), round(top), round(left + cw), round(top + ch)))
      if im.size != (w, h):
        im = im.resize((w, h), Image.BILINEAR)
      arr = np.asarray(im, dtype=np.float32) / 255.0
  except (OSError, SyntaxError, ValueError) as e:
    raise ImageDecodeError(
      f"cannot read image file {path}: {e}. Replace or delete the file, or leave unreadable "
      "files out: --config.data.skip_corrupt=True for identity-folder data (skip_corrupt=True "
      "in Python); their count and names are reported."
    ) from e
  return arr[..., None] if channels == 1 else arr


def _is_readable(path: pathlib.Path) -> bool:
  try:
    with Image.open(path) as im:
      im.load()
    return True
  except (OSError, SyntaxError, ValueError):
    return False


def _image_files(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _non_image_files(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(
    p for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS
  )


def _require_dir(root: pathlib.Path, what: str) -> None:
  if not root.is_dir():
    raise FileNotFoundError(
      f"{what} directory {root} does not exist (or is not a directory); check the data "
      "path in the config (e.g. --config.data.root=/path/to/images)"
    )


class ImageFileSource:
  """Random-access source over image files with one identity name per file.

  Records: `{"image": float32 [H, W, C] in [0, 1], "identity": int32}`.

  Args:
    files: image paths.
    names: identity name of each file (same length as `files`).
    image_size: output size, int or (height, width).
    channels: 1 (greyscale) or 3 (RGB).
    crop_fraction: centre crop of this fraction of each side before resizing.
    skip_corrupt: check every file once at construction and leave out the
      unreadable ones with a warning giving their count (`skipped_files` lists
      them); by default an unreadable file raises `ImageDecodeError` naming it
      when its record is read.
    modality: "face", "fingerprint", "digit" or "generic" (picks augmentations).
    non_image_files: files the layout scan left out for their extension; they are
      counted in a warning and the repr (`non_image_files` lists them).
  """

  def __init__(
    self,
    files: Sequence[str | pathlib.Path],
    names: Sequence[str],
    *,
    image_size: int | Sequence[int] = 64,
    channels: int = 1,
    crop_fraction: float = 1.0,
    skip_corrupt: bool = False,
    modality: str = "generic",
    non_image_files: Sequence[str | pathlib.Path] = (),
  ):
    files = [pathlib.Path(f) for f in files]
    self.non_image_files = [pathlib.Path(f) for f in non_image_files]
    if self.non_image_files:
      _LEFT_OUT["non_image"].extend(str(f) for f in self.non_image_files)
      warnings.warn(
        f"left out {len(self.non_image_files)} file(s) without an image extension "
        f"({', '.join(IMAGE_EXTENSIONS)}), e.g. {self.non_image_files[0]}",
        stacklevel=2,
      )
    names = [str(n) for n in names]
    if len(files) != len(names):
      raise ValueError(f"got {len(files)} files but {len(names)} identity names")
    self.skipped_files: list[pathlib.Path] = []
    if skip_corrupt:
      keep = [_is_readable(f) for f in files]
      self.skipped_files = [f for f, k in zip(files, keep, strict=True) if not k]
      files = [f for f, k in zip(files, keep, strict=True) if k]
      names = [n for n, k in zip(names, keep, strict=True) if k]
      if self.skipped_files:
        _LEFT_OUT["unreadable"].extend(str(f) for f in self.skipped_files)
        warnings.warn(
          f"skipped {len(self.skipped_files)} unreadable image file(s) out of "
          f"{len(self.skipped_files) + len(files)}, e.g. {self.skipped_files[0]}",
          stacklevel=2,
        )
    if not files:
      raise ValueError("no readable image files were found")
    self.files = files
    self.identity_names = sorted(set(names))
    lookup = {n: i for i, n in enumerate(self.identity_names)}
    self.identities = np.array([lookup[n] for n in names], np.int64)
    self.image_size = _image_size(image_size)
    self.channels = channels
    self.crop_fraction = crop_fraction
    self.modality = modality

  def __len__(self) -> int:
    return len(self.files)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    image = decode_image(
      self.files[index],
      image_size=self.image_size,
      channels=self.channels,
      crop_fraction=self.crop_fraction,
    )
    return {"image": image, "identity": np.int32(self.identities[index])}

  def __repr__(self) -> str:
    left_out = ""
    if self.skipped_files:
      left_out += f", {len(self.skipped_files)} unreadable files skipped"
    if self.non_image_files:
      left_out += f", {len(self.non_image_files)} non-image files skipped"
    return (
      f"ImageFileSource({len(self)} images, {len(self.identity_names)} identities, "
      f"image_size={self.image_size}, channels={self.channels}{left_out})"
    )


def _scan_identity_folders(
  root: pathlib.Path,
) -> tuple[list[pathlib.Path], list[str], list[pathlib.Path]]:
  _require_dir(root, "image")
  folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
  if not folders:
    raise ValueError(
      f"{root} has no identity sub-folders; expected root/<identity>/<image files> "
      f"({', '.join(IMAGE_EXTENSIONS)})"
    )
  files, names, empty, others = [], [], [], []
  for folder in folders:
    images = _image_files(folder)
    others += _non_image_files(folder)
    if not images:
      empty.append(folder.name)
    files += images
    names += [folder.name] * len(images)
  if empty:
    raise ValueError(
      f"{len(empty)} of {len(folders)} identity folders in {root} hold no image files "
      f"({', '.join(IMAGE_EXTENSIONS)}): {', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}."
      " Remove the empty folders or add images to them."
    )
  return files, names, others


def identity_folder_source(
  root: str | pathlib.Path, *, modality: str = "generic", **kwargs
) -> ImageFileSource:
  """Images in `root/<identity>/<file>`; kwargs go to `ImageFileSource`."""
  files, names, others = _scan_identity_folders(pathlib.Path(root))
  return ImageFileSource(files, names, modality=modality, non_image_files=others, **kwargs)


def flat_folder_source(
  roots: Sequence[str | pathlib.Path],
  pattern: str,
  *,
  name_prefix_with_folder: bool = True,
  modality: str = "generic",
  **kwargs,
) -> ImageFileSource:
  """Images in flat folders whose identity is group 1 of `pattern` matched on the stem.

  With `name_prefix_with_folder` the identity name is "<folder>/<group 1>", so equal
  ids in different folders (FVC finger ids per database) stay different identities.
  """
  regex = re.compile(pattern)
  files, names, unmatched, others = [], [], [], []
  for root in roots:
    root = pathlib.Path(root)
    _require_dir(root, "image")
    images = _image_files(root)
    others += _non_image_files(root)
    if not images:
      raise ValueError(f"{root} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    for f in images:
      m = regex.match(f.stem)
      if m is None:
        unmatched.append(f.name)
        continue
      files.append(f)
      names.append(f"{root.name}/{m.group(1)}" if name_prefix_with_folder else m.group(1))
  if unmatched:
    raise ValueError(
      f"{len(unmatched)} file name(s) do not match the identity pattern {pattern!r}, e.g. "
      f"{unmatched[0]}; rename them or pass a pattern whose group 1 is the identity"
    )
  return ImageFileSource(files, names, modality=modality, non_image_files=others, **kwargs)


def fvc2002_source(
  root: str | pathlib.Path,
  databases: Sequence[str] = ("DB1_B", "DB2_B", "DB3_B"),
  **kwargs,
) -> ImageFileSource:
  """FVC2002 `root/DBn_B/<finger>_<impression>.tif`; identity (DB, finger), e.g. "DB1_B/101".

  DB4 is synthetic (SFinGe), hence left out by default.
  """
  root = pathlib.Path(root)
  return flat_folder_source(
    [root / db for db in databases], r"^(\d+)_\d+$", modality="fingerprint", **kwargs
  )


def _unmatched_error(what: str, a_name: str, b_name: str, only_a: list, only_b: list) -> ValueError:
  return ValueError(
    f"{what} do not match between {a_name}/ and {b_name}/: {len(only_a)} only in {a_name}/ "
    f"(e.g. {only_a[:3]}), {len(only_b)} only in {b_name}/ (e.g. {only_b[:3]}). Every "
    f"subject needs both modalities: add the missing files or remove the unpaired ones."
  )


class PairedImageSource:
  """Two modalities of the same subjects (Grain RandomAccessDataSource).

  Records: `{"image_a": [H, W, Ca], "image_b": [H, W, Cb], "identity": int32}`;
  `source_a` and `source_b` are the unimodal sources (`{"image", "identity"}`).
  Record i pairs file `index_a[i]` of `source_a` with file `index_b[i]` of `source_b`.
  """

  def __init__(self, source_a, source_b, index_a: np.ndarray, index_b: np.ndarray, modalities):
    self.source_a, self.source_b = source_a, source_b
    self.index_a, self.index_b = np.asarray(index_a), np.asarray(index_b)
    self.identities = source_a.identities[self.index_a]
    self.identity_names = source_a.identity_names
    self.modalities = tuple(modalities)

  def __len__(self) -> int:
    return len(self.index_a)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    a = self.source_a[int(self.index_a[index])]
    b = self.source_b[int(self.index_b[index])]
    return {"image_a": a["image"], "image_b": b["image"], "identity": a["identity"]}


def paired_stem_source(
  root: str | pathlib.Path,
  modality_a: str = "face",
  modality_b: str = "fingerprint",
  *,
  identity_pattern: str | None = None,
  channels_a: int = 3,
  channels_b: int = 1,
  **kwargs,
) -> PairedImageSource:
  """`root/<a>/<stem>.*` paired with `root/<b>/<stem>.*` by equal stems.

  The identity is the stem, or group 1 of `identity_pattern` matched on the stem
  (for layouts with several images per subject such as "alice_1").
  """
  root = pathlib.Path(root)
  dirs = [root / modality_a, root / modality_b]
  for d in dirs:
    _require_dir(d, f"{d.name} modality")
  stems = [{p.stem: p for p in _image_files(d)} for d in dirs]
  for d, s in zip(dirs, stems, strict=True):
    if not s:
      raise ValueError(f"{d} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
  only_a = sorted(set(stems[0]) - set(stems[1]))
  only_b = sorted(set(stems[1]) - set(stems[0]))
  if only_a or only_b:
    raise _unmatched_error("file stems", modality_a, modality_b, only_a, only_b)
  common = sorted(stems[0])
  if identity_pattern is None:
    names = common
  else:
    regex = re.compile(identity_pattern)
    bad = [s for s in common if regex.match(s) is None]
    if bad:
      raise ValueError(f"{len(bad)} stem(s) do not match identity_pattern, e.g. {bad[0]}")
    names = [regex.match(s).group(1) for s in common]
  a, b = (
    ImageFileSource(
      [stem[s] for s in common],
      names,
      channels=channels,
      modality=modality,
      non_image_files=_non_image_files(d),
      **kwargs,
    )
    for stem, d, channels, modality in zip(
      stems, dirs, (channels_a, channels_b), (modality_a, modality_b), strict=True
    )
  )
  index = np.arange(len(common))
  return PairedImageSource(a, b, index, index, (modality_a, modality_b))


def paired_identity_folder_source(
  root: str | pathlib.Path,
  modality_a: str = "face",
  modality_b: str = "fingerprint",
  *,
  channels_a: int = 3,
  channels_b: int = 1,
  **kwargs,
) -> PairedImageSource:
  """`root/<a>/<identity>/*` and `root/<b>/<identity>/*` paired by identity name.

  An identity with n_a images of modality a and n_b of modality b gives
  max(n_a, n_b) records; record j pairs image j mod n_a with image j mod n_b.
  """
  root = pathlib.Path(root)
  a = identity_folder_source(root / modality_a, channels=channels_a, modality=modality_a, **kwargs)
  b = identity_folder_source(root / modality_b, channels=channels_b, modality=modality_b, **kwargs)
  only_a = sorted(set(a.identity_names) - set(b.identity_names))
  only_b = sorted(set(b.identity_names) - set(a.identity_names))
  if only_a or only_b:
    raise _unmatched_error("identity folders", modality_a, modality_b, only_a, only_b)
  index_a, index_b = [], []
  for ident in range(len(a.identity_names)):  # same sorted names on both sides
    ia = np.flatnonzero(a.identities == ident)
    ib = np.flatnonzero(b.identities == ident)
    n = max(len(ia), len(ib))
    index_a += [ia[j % len(ia)] for j in range(n)]
    index_b += [ib[j % len(ib)] for j in range(n)]
  return PairedImageSource(a, b, np.array(index_a), np.array(index_b), (modality_a, modality_b))

"""Input pipeline throughput against training-step consumption, on this machine.

    python -m benchmarks.input_pipeline [--batches 20] [--threads 2] [--workers 0]

Prints examples/s for each built-in source (raw rendering in one thread, and
through the Grain pipeline with augmentation), for decoding a PNG identity-folder
dataset, and for a jitted training step of a small CNN (PxK batch-all triplet
loss) at the default 64x64 resolution, then the pipeline / training ratio (the
pipeline must deliver at least 3x). jaxsim.models is not on the data branch yet,
so the training step uses the small CNN of benchmarks/_data_cnn.py.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import jax
import numpy as np
from PIL import Image

from benchmarks import _data_cnn
from jaxsim.data import pipeline
from jaxsim.data.sources import (
  DigitsTextSource,
  FaceFingerprintSource,
  SyntheticFaces,
  SyntheticFingerprints,
  SyntheticLookalikePairs,
  identity_folder_source,
)


def _rate(iterator, n_batches, batch_size) -> float:
  next(iterator)  # warm-up (thread start, first rendering)
  start = time.perf_counter()
  for _ in range(n_batches):
    next(iterator)
  return n_batches * batch_size / (time.perf_counter() - start)


def _raw_rate(source, n=200) -> float:
  start = time.perf_counter()
  for i in range(n):
    source[i % len(source)]
  return n / (time.perf_counter() - start)


def _train_rate(image_shape, batch_size=64, steps=10) -> float:
  model = _data_cnn.SmallCNN()
  state, tx = _data_cnn.init(model, image_shape)
  step = _data_cnn.make_train_step(model, tx)
  images = np.random.default_rng(0).uniform(size=(batch_size, *image_shape)).astype(np.float32)
  labels = np.repeat(np.arange(batch_size // 4), 4).astype(np.int32)
  state, loss = step(state, images, labels)
  jax.block_until_ready(loss)
  start = time.perf_counter()
  for _ in range(steps):
    state, loss = step(state, images, labels)
  jax.block_until_ready(loss)
  return steps * batch_size / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--workers", type=int, default=0)
  args = parser.parse_args()
  if args.workers:
    from absl import flags

    flags.FLAGS.mark_as_parsed()
  it_kwargs = {"num_threads": args.threads, "num_workers": args.workers}
  p, k = 16, 4
  print(
    f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.threads} pipeline threads,"
    f" {args.workers} worker processes; batch 64; 64x64 unless stated"
  )
  faces = SyntheticFaces(500, 10)
  fps = SyntheticFingerprints(500, 8)
  face_fp = FaceFingerprintSource(500, 8, correlation=0.5)
  digits = DigitsTextSource()
  lookalike = SyntheticLookalikePairs(2000)
  rows = []
  for name, source, ds in [
    ("synthetic faces (PxK)", faces, pipeline.pxk_batches(faces, p=p, k=k)),
    ("synthetic fingerprints (PxK)", fps, pipeline.pxk_batches(fps, p=p, k=k)),
    ("face-fingerprint (two-tower)", face_fp, pipeline.two_tower_batches(face_fp, batch_size=64)),
    (
      "digits + text 28x28 (image-text)",
      digits,
      pipeline.image_text_batches(digits, batch_size=64),
    ),
    (
      "look-alike pairs (two-tower)",
      lookalike,
      pipeline.two_tower_batches(lookalike, batch_size=64),
    ),
  ]:
    raw = _raw_rate(source)
    piped = _rate(pipeline.make_iterator(ds, **it_kwargs), args.batches, 64)
    rows.append((name, raw, piped))
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    for i in range(len(faces) // 5):  # 1,000 PNG files, 100 identities
      r = faces[i * 5]
      folder = root / f"id{int(r['identity']):03d}"
      folder.mkdir(exist_ok=True)
      Image.fromarray((r["image"] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    png = identity_folder_source(root, channels=3, modality="face")
    piped = _rate(
      pipeline.make_iterator(pipeline.pxk_batches(png, p=p, k=k), **it_kwargs), args.batches, 64
    )
    rows.append(("PNG identity folders 64x64 RGB (PxK)", _raw_rate(png), piped))
  print(f"{'source':40s} {'raw ex/s (1 thread)':>20s} {'pipeline ex/s':>14s}")
  for name, raw, piped in rows:
    print(f"{name:40s} {raw:20.0f} {piped:14.0f}")
  for shape, label in (((64, 64, 3), "faces 64x64x3"), ((64, 64, 1), "fingerprints 64x64x1")):
    train = _train_rate(shape)
    piped = rows[0][2] if shape[-1] == 3 else rows[1][2]
    print(
      f"train step (small CNN, PxK 16x4, batch-all triplet) {label}: {train:.0f} ex/s; "
      f"pipeline / train = {piped / train:.1f}x"
    )


if __name__ == "__main__":
  main()

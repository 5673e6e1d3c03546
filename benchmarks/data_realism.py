"""How hard is the built-in data compared with real data? Verification AUC of a quick model.

    python -m benchmarks.data_realism [--steps 400] [--datasets faces,fingerprints,orl,fvc]

For each dataset: split identities 60/40 (seed 0) into train and unseen test
identities, train a small CNN (benchmarks/_data_cnn.py, widths 16-32-64-128,
64-d L2-normalised embeddings) with the batch-all triplet loss (margin 0.2) on
augmented PxK batches (P=16, K=4), Adam 1e-3, for --steps steps on the CPU, then
report ROC-AUC (sklearn) of cosine similarity over all image pairs of the test
identities. The raw-pixel cosine AUC and the untrained-network AUC are printed
as baselines. Real sets (ORL faces, FVC2002 DB1-3) are read from ../shared/data.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import numpy as np
import sklearn.metrics

from benchmarks import _data_cnn
from jaxsim.data import pipeline, splits
from jaxsim.data.sources import (
  ArrayImageSource,
  SyntheticFaces,
  SyntheticFingerprints,
  fvc2002_source,
  identity_folder_source,
)

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def _load(name: str) -> tuple[ArrayImageSource, str]:
  if name == "faces":
    src, note = SyntheticFaces(200, 8, image_size=64, seed=0), "built-in, 200 ids x 8, 64x64 RGB"
  elif name == "fingerprints":
    src = SyntheticFingerprints(200, 8, image_size=64, seed=0)
    note = "built-in, 200 fingers x 8, 64x64"
  elif name == "orl":
    src = identity_folder_source(SHARED / "orl_faces", image_size=64, modality="face")
    note = "ORL, 40 ids x 10, 64x64 grey"
  elif name == "fvc":
    src = fvc2002_source(SHARED / "fvc2002_db_b", image_size=96, crop_fraction=0.75)
    note = "FVC2002 DB1-3 B, 30 fingers x 8, centre 75% at 96x96"
  else:
    raise ValueError(f"unknown dataset {name!r}")
  images = np.stack([src[i]["image"] for i in range(len(src))])
  return ArrayImageSource(images, src.identities, modality=src.modality), note


def _auc(embeddings: np.ndarray, ids: np.ndarray) -> float:
  e = embeddings.reshape(len(embeddings), -1)
  e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-8)
  sims = e @ e.T
  iu = np.triu_indices(len(e), 1)
  return float(sklearn.metrics.roc_auc_score(ids[iu[0]] == ids[iu[1]], sims[iu]))


def run(name: str, steps: int, seed: int = 0) -> dict:
  t0 = time.perf_counter()
  source, note = _load(name)
  groups, records = splits.split_records(source.identities, {"train": 0.6, "test": 0.4}, seed=seed)
  test_images = source.images[records["test"]]
  test_ids = source.identities[records["test"]]
  model = _data_cnn.SmallCNN(widths=(16, 32, 64, 128))
  state, tx = _data_cnn.init(model, source.images.shape[1:], seed=seed)
  untrained = _auc(_data_cnn.embed(model, state["params"], test_images), test_ids)
  step = _data_cnn.make_train_step(model, tx)
  it = pipeline.make_iterator(
    pipeline.pxk_batches(source, records["train"], p=16, k=4, seed=seed), num_threads=1
  )
  for _ in range(steps):
    batch = next(it)
    state, loss = step(state, batch["image"], batch["identity"])
  trained = _auc(_data_cnn.embed(model, state["params"], test_images), test_ids)
  return {
    "dataset": name,
    "note": note,
    "test_identities": len(groups["test"]),
    "pixels_auc": _auc(test_images, test_ids),
    "untrained_auc": untrained,
    "trained_auc": trained,
    "final_loss": float(loss),
    "seconds": time.perf_counter() - t0,
  }


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=400)
  parser.add_argument("--datasets", default="faces,fingerprints,orl,fvc")
  args = parser.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.steps} steps of PxK 16x4")
  print(
    f"{'dataset':13s} {'test ids':>8s} {'pixels':>7s} {'untrained':>9s} {'trained':>8s}"
    f" {'loss':>6s} {'s':>5s}  data"
  )
  for name in args.datasets.split(","):
    r = run(name, args.steps)
    print(
      f"{r['dataset']:13s} {r['test_identities']:8d} {r['pixels_auc']:7.3f} "
      f"{r['untrained_auc']:9.3f} {r['trained_auc']:8.3f} {r['final_loss']:6.3f} "
      f"{r['seconds']:5.0f}  {r['note']}",
      flush=True,
    )


if __name__ == "__main__":
  main()

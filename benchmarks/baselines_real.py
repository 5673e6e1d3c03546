"""Classical baselines on real faces (ORL) and fingerprints (FVC2002 DB1-3 set B).

    python -m benchmarks.baselines_real --data=../shared/data [--seeds=0,1,2]

For each dataset and seed, the identities are split with `splits.split_records`
(ORL: 40 people, 20 train / 10 val / 10 test; FVC2002 DB1-3 B: 30 fingers x 8
impressions, 18 / 6 / 6). Each baseline of `jaxsim.baselines` is fitted on the train
identities' images; every pair of validation images gives the validation AUC and every
pair of test images the test AUC and EER, with 95% intervals from a bootstrap over
test identities (`clustered.subject_bootstrap` with `verification_statistic`, 1000
replicates). Prints Markdown tables: the mean over seeds, then per seed.
"fisherfaces" is the paper's recipe (PCA to N - c dimensions); "fisherfaces_pca_by_val"
picks the PCA dimension from PCA_DIMS by the validation AUC (the N - c PCA overfits
when the test identities are new).

Images: ORL at its native 112 x 92 greyscale; FVC2002 resized to --fvc_size square
(the three sensors' images differ in size and aspect).
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

from jaxsim import baselines
from jaxsim.data import splits
from jaxsim.data.sources import fvc2002_source, identity_folder_source
from jaxsim.evaluate import clustered

PCA_DIMS = (20, 40, 80)


def _load(source) -> tuple[np.ndarray, np.ndarray]:
  images = np.stack([source[i]["image"] for i in range(len(source))])
  return images, np.asarray(source.identities)


def _all_pairs(records: np.ndarray, identities: np.ndarray) -> dict[str, np.ndarray]:
  a, b = np.triu_indices(records.size, k=1)
  a, b = records[a], records[b]
  return {"a": a, "b": b, "label": (identities[a] == identities[b]).astype(np.int32)}


# Rows of the tables: (label, baseline name, candidate options). With several candidates
# the one with the best validation AUC is tested (test pairs choose nothing).
FISHER_BY_VAL = ("fisherfaces_pca_by_val", "fisherfaces", [{"pca_components": k} for k in PCA_DIMS])


def evaluate(name, candidates, images, identities, counts, seed, num_resamples) -> dict:
  _, records = splits.split_records(identities, counts=counts, seed=seed)
  model, options, val_auc = baselines.fit_on_validation(
    name, images, identities, records["train"], _all_pairs(records["val"], identities), candidates
  )
  test = _all_pairs(records["test"], identities)
  scores = baselines.pair_scores(model, images, test)
  stats = clustered.subject_bootstrap(
    clustered.verification_statistic(scores, test["label"]),
    identities[test["a"]],
    identities[test["b"]],
    num_resamples=num_resamples,
    seed=seed,
  )
  return {"val_auc": val_auc, "options": options, **stats}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default=str(pathlib.Path("..") / "shared" / "data"))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--datasets", default="orl,fvc")
  parser.add_argument("--fvc_size", type=int, default=192)
  parser.add_argument("--num_resamples", type=int, default=1000)
  args = parser.parse_args()
  data = pathlib.Path(args.data)
  seeds = [int(s) for s in args.seeds.split(",")]
  datasets = {
    "orl": lambda: (
      identity_folder_source(data / "orl_faces", image_size=(112, 92), modality="face"),
      {"train": 20, "val": 10, "test": 10},
      [(n, n, [{}]) for n in baselines.FACE_BASELINES] + [FISHER_BY_VAL],
    ),
    "fvc": lambda: (
      fvc2002_source(data / "fvc2002_db_b", image_size=args.fvc_size),
      {"train": 18, "val": 6, "test": 6},
      [(n, n, [{}]) for n in baselines.FINGERPRINT_BASELINES] + [FISHER_BY_VAL],
    ),
  }
  for key in args.datasets.split(","):
    source, counts, names = datasets[key]()
    images, identities = _load(source)
    print(
      f"\n## {key}: {len(images)} images of {len(source.identity_names)} identities, "
      f"{images.shape[1]}x{images.shape[2]}, split {counts}\n"
    )
    rows, means = [], []
    for label, name, candidates in names:
      start = time.perf_counter()
      results = [
        evaluate(name, candidates, images, identities, counts, seed, args.num_resamples)
        for seed in seeds
      ]
      seconds = time.perf_counter() - start
      for seed, r in zip(seeds, results, strict=True):
        chosen = ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "-"
        rows.append(
          f"| {label} | {seed} | {chosen} | {r['val_auc']:.3f} | {r['auc']:.3f} "
          f"[{r['auc_ci_low']:.3f}, {r['auc_ci_high']:.3f}] | {r['eer']:.3f} "
          f"[{r['eer_ci_low']:.3f}, {r['eer_ci_high']:.3f}] |"
        )
      mean = {k: np.mean([r[k] for r in results]) for k in results[0] if k != "options"}
      means.append(
        f"| {label} | {mean['val_auc']:.3f} | {mean['auc']:.3f} "
        f"[{mean['auc_ci_low']:.3f}, {mean['auc_ci_high']:.3f}] | {mean['eer']:.3f} "
        f"[{mean['eer_ci_low']:.3f}, {mean['eer_ci_high']:.3f}] | {seconds:.1f} |"
      )
    print(f"Mean over seeds {seeds} (CI bounds averaged over seeds):\n")
    print("| baseline | val AUC | test AUC [95% CI] | test EER [95% CI] | seconds |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(means))
    print("\nPer seed:\n")
    print("| baseline | seed | chosen on val | val AUC | test AUC [95% CI] | test EER [95% CI] |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
  main()

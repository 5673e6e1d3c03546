"""Score-level ensembles of `benchmarks/orl_recipe.py` runs (their --out ..._scores_sS.npz).

    python -m benchmarks.orl_ensemble /tmp/orl/trip_s{seed} /tmp/orl/tripB_s{seed} --seeds=0,1,2

A prefix is the --out of a run without ".json"; "{seed}" in it is replaced by each seed.

Each member's learned pair scores are z-normalised with its own validation-pair mean and
std and averaged with equal weights (nothing is fitted on test). Reported: the pure
learned ensemble, and its fusion with Fisherfaces-by-val (z-normalised on validation,
weight on the learned side chosen on validation AUC from 0, 0.05, ..., 1).
"""

from __future__ import annotations

import argparse

import numpy as np

from jaxsim.evaluate import verification


def z(s, ref):
  return (s - ref.mean()) / ref.std()


def main():
  p = argparse.ArgumentParser()
  p.add_argument("prefixes", nargs="+")
  p.add_argument("--seeds", default="0,1,2")
  args = p.parse_args()
  rows = []
  for seed in [int(s) for s in args.seeds.split(",")]:
    runs = [np.load(pre.format(seed=seed) + f"_scores_s{seed}.npz") for pre in args.prefixes]
    r0 = runs[0]
    lv = np.mean([z(r["val"], r["val"]) for r in runs], axis=0)
    lt = np.mean([z(r["test"], r["val"]) for r in runs], axis=0)
    yv, yt = r0["val_label"], r0["test_label"]
    val, test = verification.roc_auc(lv, yv), verification.roc_auc(lt, yt)
    ff_test = verification.roc_auc(r0["ff_test"], yt)
    fv, ft = z(r0["ff_val"], r0["ff_val"]), z(r0["ff_test"], r0["ff_val"])
    grid = np.round(np.linspace(0, 1, 21), 2)
    fus = [verification.roc_auc(w * lv + (1 - w) * fv, yv) for w in grid]
    i = int(np.argmax(fus))
    fus_test = verification.roc_auc(grid[i] * lt + (1 - grid[i]) * ft, yt)
    members = " ".join(
      f"{verification.roc_auc(r['val'], yv):.4f}/{verification.roc_auc(r['test'], yt):.4f}"
      for r in runs
    )
    rows.append((val, test, ff_test, fus[i], fus_test))
    print(
      f"seed {seed}: members val/test {members} | ensemble val {val:.4f} test {test:.4f} | "
      f"FF test {ff_test:.4f} | fusion w={grid[i]} val {fus[i]:.4f} test {fus_test:.4f}"
    )
  m = np.mean(rows, axis=0)
  print(
    f"mean: ensemble val {m[0]:.4f} test {m[1]:.4f} | FF test {m[2]:.4f} | "
    f"fusion val {m[3]:.4f} test {m[4]:.4f}"
  )


if __name__ == "__main__":
  main()

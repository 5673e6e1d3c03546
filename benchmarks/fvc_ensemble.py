"""Score-level ensembles of `benchmarks/fvc_recipe.py` runs (their --out ..._scores_sS.npz).

    python -m benchmarks.fvc_ensemble /tmp/fvc/H_s{seed} /tmp/fvc/I_s{seed} --seeds=0,1,2

A prefix is the --out of a run without ".json"; "{seed}" in it is replaced by each seed.
Every member of every run (m0_, m1_, ... in its npz) is z-normalised with its own
validation-pair mean and std and the members are averaged with equal weights (nothing is
fitted on test). Also reported: the fusion of that ensemble with FingerCode and with
Fisherfaces-by-val from `fvc_recipe`'s classical cache (--cache), z-normalised on val,
weight on the learned side chosen on val AUC from 0, 0.05, ..., 1.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

from benchmarks.fvc_recipe import fuse, z
from jaxsim.evaluate import verification


def main():
  p = argparse.ArgumentParser()
  p.add_argument("prefixes", nargs="+")
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--cache", default="/tmp/fvc_cache")
  args = p.parse_args()
  rows = []
  for seed in [int(s) for s in args.seeds.split(",")]:
    runs = [np.load(pre.format(seed=seed) + f"_scores_s{seed}.npz") for pre in args.prefixes]
    yv, yt = runs[0]["val_label"], runs[0]["test_label"]
    members = [
      (r[f"m{i}_val"], r[f"m{i}_test"])
      for r in runs
      for i in range(len([k for k in r.files if k.endswith("_val") and k[0] == "m"]))
    ]
    lv = np.mean([z(v, v) for v, _ in members], axis=0)
    lt = np.mean([z(t, v) for v, t in members], axis=0)
    val, test = verification.roc_auc(lv, yv), verification.roc_auc(lt, yt)
    cl = np.load(pathlib.Path(args.cache) / f"classical_s{seed}.npz")
    fus = {
      n: fuse(lv, lt, cl[f"{n}_val"], cl[f"{n}_test"], yv, yt)
      for n in ("fingercode", "fisherfaces")
    }
    member_text = " ".join(
      f"{verification.roc_auc(v, yv):.4f}/{verification.roc_auc(t, yt):.4f}" for v, t in members
    )
    rows.append((val, test, *fus["fingercode"][1:], *fus["fisherfaces"][1:]))
    print(
      f"seed {seed}: members val/test {member_text} | ensemble of {len(members)} val {val:.4f} "
      f"test {test:.4f} | fusion FC w={fus['fingercode'][0]} val {fus['fingercode'][1]:.4f} "
      f"test {fus['fingercode'][2]:.4f} | fusion FF w={fus['fisherfaces'][0]} val "
      f"{fus['fisherfaces'][1]:.4f} test {fus['fisherfaces'][2]:.4f}"
    )
  m = np.mean(rows, axis=0)
  print(
    f"mean: ensemble val {m[0]:.4f} test {m[1]:.4f} | fusion FC val {m[2]:.4f} test {m[3]:.4f}"
    f" | fusion FF val {m[4]:.4f} test {m[5]:.4f}"
  )


if __name__ == "__main__":
  main()

r"""Choose a real-data recipe on more validation identities: cross-fitting over the
train + val people of each split, with the test people left out.

    python -m benchmarks.recipe_crossfit --out=OUT --root=../shared/data/orl_faces \
      [--config=face_verify:folders] [--splits=0,1,2] [--folds=3] [--jobs=1]

With 10 validation people per split, the ORL recipes tie on validation while their test
AUCs move by up to 0.005 (README, "Real faces"). Here each candidate recipe is run on
`--folds` train / val partitions of the same 30 non-test identities
(`--config.split.val_fold=k`, `splits.rotate_validation`: every person is in validation
once), and the candidate with the best mean validation AUC of its `--metric` matcher over
the folds is chosen, per split. Fold 0 is the task's own partition, so the chosen
recipe's fold-0 run is the task run with that recipe, and only its test AUC is printed:
test identities choose nothing. Runs whose `metrics.json` exists are not repeated.

Candidates are named lists of config overrides (`CANDIDATES`); edit them to try others.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import statistics
import subprocess
import sys

_MEMBERS = ("m0", "m1", "m2")
CANDIDATES: dict[str, list[str]] = {
  "recipe": [],
  "widths_16_32_64_128": [f"--config.model.{m}.encoder.features=(16,32,64,128)" for m in _MEMBERS],
  "cosface_margin_0.3": [f"--config.loss.{m}.terms.cosface.margin=0.3" for m in _MEMBERS],
}


def _run(
  config: str, root: str, split: int, fold: int, overrides: list[str], workdir: pathlib.Path
):
  if (workdir / "metrics.json").is_file():
    return
  cmd = [
    sys.executable,
    "-m",
    "experiments.run",
    f"--config={config}",
    f"--config.data.root={root}",
    f"--config.split.seed={split}",
    f"--config.split.val_fold={fold}",
    f"--workdir={workdir}",
    *overrides,
  ]
  workdir.mkdir(parents=True, exist_ok=True)
  with open(workdir / "run.log", "w") as log:
    subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--out", required=True)
  ap.add_argument("--root", required=True)
  ap.add_argument("--config", default="face_verify:folders")
  ap.add_argument("--splits", default="0,1,2")
  ap.add_argument("--folds", type=int, default=3)
  ap.add_argument("--metric", default="ensemble")
  ap.add_argument("--candidates", default=",".join(CANDIDATES))
  ap.add_argument("--jobs", type=int, default=1)
  args = ap.parse_args(argv)
  out, names = pathlib.Path(args.out), args.candidates.split(",")
  seeds = [int(s) for s in args.splits.split(",")]
  jobs = [(n, s, k) for s in seeds for n in names for k in range(args.folds)]
  with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
    done = [
      pool.submit(_run, args.config, args.root, s, k, CANDIDATES[n], out / n / f"s{s}_f{k}")
      for n, s, k in jobs
    ]
    for future in done:
      future.result()

  def metrics(n, s, k):
    return json.loads((out / n / f"s{s}_f{k}" / "metrics.json").read_text())[args.metric]

  print(f"| split | {' | '.join(names)} | chosen | its test AUC (fold 0) |")
  print(f"|---|{'---|' * len(names)}---|---|")
  for s in seeds:
    vals = {n: [metrics(n, s, k)["val"]["auc"] for k in range(args.folds)] for n in names}
    means = {n: statistics.fmean(v) for n, v in vals.items()}
    chosen = max(names, key=lambda n: means[n])  # ties: the earlier candidate
    cells = [f"{means[n]:.4f} ({', '.join(f'{v:.4f}' for v in vals[n])})" for n in names]
    test = metrics(chosen, s, 0)["test"]["auc"]
    print(f"| {s} | {' | '.join(cells)} | {chosen} | {test:.4f} |")


if __name__ == "__main__":
  main()

"""Evaluation rate of the 20-run one-shot protocol: trials/s, jaxsim against a per-pair reference.

    python -m benchmarks.oneshot_runs [--runs=DIR] [--repeats=3] [--published]

A trial is one test item classified among its run's 20 training images. Both sides
score the same runs (20 runs x 20 trials, in Lake et al.'s layout) with the same
Koch network at 105x105 (untrained: the rate does not depend on the weights; widths
16-32-32-64 with a 512-unit layer, or the published 64-128-128-256 / 4096 with
`--published`, whose per-pair reference takes many minutes on a CPU), images decoded
from PNG included:

- jaxsim (`oneshot.score_runs` + `oneshot.pair_scorer`): each of a run's 40 images
  goes through the tower once, then the L1 head scores the 400 (item, candidate)
  feature pairs;
- reference: the way Koch et al.'s published evaluation and seed project 2 score a
  trial, each (item, candidate) pair through the whole Siamese network, 20 pairs a
  trial (`inference.pair_logits`).

Without `--runs`, 20 runs are built from procedurally drawn characters in a temporary
folder. Prints trials/s for each (the median of `--repeats`) and the ratio, and
checks that both give the same predictions.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import statistics
import tempfile
import time

import jax
import numpy as np
from PIL import Image, ImageDraw

from jaxsim import inference, report
from jaxsim.data.sources import omniglot
from jaxsim.evaluate import oneshot
from jaxsim.models import model_from_config


def _drawing(strokes: np.ndarray, rng) -> bytes:
  im = Image.new("L", (105, 105), 255)
  draw = ImageDraw.Draw(im)
  for stroke in strokes:
    draw.line([tuple(p) for p in stroke + rng.normal(0, 1.5, stroke.shape)], fill=0, width=4)
  buf = io.BytesIO()
  im.convert("1").save(buf, format="PNG")
  return buf.getvalue()


def synthetic_runs(root: pathlib.Path, num_runs: int = 20, way: int = 20) -> list[oneshot.Run]:
  """`num_runs` runs of procedurally drawn characters (two drawers per character)."""
  rng = np.random.default_rng(0)
  pngs, classes, drawers = [], [], []
  for c in range(way * 2):
    strokes = rng.uniform(15, 90, size=(3, 4, 2))
    for d in (1, 2):
      pngs.append(_drawing(strokes, rng))
      classes.append(c)
      drawers.append(d)
  files = oneshot.run_files(
    lambda i: pngs[i],
    np.array(classes),
    np.array(drawers),
    np.zeros(len(classes), int),
    num_runs=num_runs,
    way=way,
  )
  report.write_files(files, root, process_index=0)
  return oneshot.read_runs(root)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", default="", help="a folder of runs (default: built here)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--published", action="store_true", help="Koch's published widths")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(args.runs or tmp)
    runs = oneshot.read_runs(root) if args.runs else synthetic_runs(root)
    widths, dense = ((64, 128, 128, 256), 4096) if args.published else ((16, 32, 32, 64), 512)
    cfg = {"kind": "koch", "encoder": {"name": "koch", "features": widths, "dense": dense}}
    model = model_from_config(cfg)
    x = np.zeros((2, 105, 105, 1), np.float32)
    variables = model.init(jax.random.key(0), x, x)

    def decode(paths):
      return np.stack([omniglot.decode_png(root / p, 105, p) for p in paths])[..., None]

    def ours():
      head = jax.jit(lambda a, b: model.apply(variables, a, b, method=model.pair_logits))
      scorer = oneshot.pair_scorer(lambda a, b: np.asarray(head(a, b)))

      def features_of(paths):
        return inference.embed(model, variables, decode(paths), batch_size=64)

      return oneshot.score_runs(runs, features_of, scorer, num_resamples=10)["predictions"]

    def reference():
      predictions = []
      for run in runs:
        train_images, preds = decode(run.training), []
        for item in run.test:
          test_image = np.repeat(decode([item]), len(run.training), axis=0)
          logits = inference.predict(
            model, variables, {"a": test_image, "b": train_images}, "logits", 64
          )
          preds.append(int(np.argmax(logits)))
        predictions.append(preds)
      return predictions

    trials = sum(len(r.test) for r in runs)
    results = {}
    for name, fn in (("jaxsim", ours), ("reference", reference)):
      fn()  # compile
      times = []
      for _ in range(args.repeats):
        start = time.perf_counter()
        predictions = fn()
        times.append(time.perf_counter() - start)
      results[name] = (trials / statistics.median(times), predictions)
    same = results["jaxsim"][1] == results["reference"][1]
    print(
      f"{len(runs)} runs, {trials} trials, Koch network {widths}/{dense} at 105x105, "
      f"{jax.devices()[0].platform}"
    )
    print("| side | trials/s |\n|---|---|")
    for name, (rate, _) in results.items():
      print(f"| {name} | {rate:.1f} |")
    ratio = results["jaxsim"][0] / results["reference"][0]
    print(f"ratio jaxsim / reference: {ratio:.2f}; same predictions: {same}")


if __name__ == "__main__":
  main()

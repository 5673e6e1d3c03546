"""Similarity search on left/right look-alike pairs: contrastive against triplet loss.

Every pair (a left and a right image that "look alike") is one identity. The
pairs are split by identity into train / val / test (fixed by seed, manifest in
the workdir). A Siamese encoder (shared weights for left and right) is trained
on two-tower batches, where row i holds the left and the right image of pair i;
the in-batch losses see both sides stacked, so a row's partner is its only
positive and every other image in the batch is a negative. The two losses
differ and nothing else does: same split, initialisation seed, batches,
optimiser, steps and model selection.

Evaluation: the left images of the test pairs query a gallery of the right
images of the test pairs (one relevant item per query, N = gallery size). The
model is selected on validation retrieval (R@1 of val left images against val
right images) at every evaluation, and the best checkpoint is the one tested
(source project 5 validated a stale model and kept its epoch-1 weights).

Metric conventions (`jaxsim.evaluate.retrieval`): R@K = fraction of queries
whose partner is within the first K results (chance K / N); MRR = mean of
1 / rank of the partner over the whole gallery (chance H_N / N); MRR@10 is the
same truncated at 10 (what project 5 called "mAP@10"); MAP@R with R = 1
relevant item equals R@1 and is reported for completeness. Each loss runs
`num_seeds` times (seed s: split seed s and initialisation seed s), and the
report gives mean, standard deviation and range over seeds, plus the paired
per-seed difference triplet - contrastive. Within each seed, R@1, R@10, MAP@R and
MRR get 95% intervals from a bootstrap over test query identities (the independent
units; the gallery is held fixed).

Hyperparameters are chosen per seed on that seed's own validation split: with
``loss.<name>.margin_grid`` set (the contrastive default), each margin is trained and
the one with the best validation R@1 is tested. A margin tuned once on seed 0's
validation identities would leak, since they are test identities under other seeds.

Commands:

    python -m experiments.run --config=similarity_search                   # default
    python -m experiments.run --config=similarity_search:runlocal          # < 2 min
    python -m experiments.run --config=similarity_search:seed              # project 5 recipe
    python -m experiments.run --config=similarity_search \\
        --config.data.source=tll --config.data.root=/path/to/tll           # Totally Looks Like

Totally Looks Like layout: `root/left/<stem>.jpg` and `root/right/<stem>.jpg`
with matching file stems (6,016 pairs in the public release).
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

from jaxsim import inference, models, objectives, report, train
from jaxsim.data import loaders, pipeline, splits
from jaxsim.data.sources import (
  ArrayPairSource,
  SyntheticLookalikePairs,
  totally_looks_like_source,
)
from jaxsim.evaluate import clustered, retrieval, search

LOSSES = ("contrastive", "triplet")
_REPORTED = ("recall_at_1", "recall_at_5", "recall_at_10", "map_at_r", "mrr", "mrr_at_10")


def load_pairs(data_cfg) -> ArrayPairSource:
  """The pairs of `data.source` ("synthetic" or "tll"), decoded once into memory."""
  if data_cfg.source == "synthetic":
    source = SyntheticLookalikePairs(
      data_cfg.num_pairs,
      image_size=data_cfg.image_size,
      difficulty=data_cfg.difficulty,
      seed=data_cfg.data_seed,
    )
  elif data_cfg.source == "tll":
    if not data_cfg.root:
      raise ValueError(
        "data.source='tll' needs data.root, the folder holding left/ and right/ "
        "(Totally Looks Like layout: root/left/<stem>.jpg and root/right/<stem>.jpg)"
      )
    source = totally_looks_like_source(data_cfg.root, image_size=data_cfg.image_size)
  else:
    raise ValueError(f"data.source must be 'synthetic' or 'tll', got {data_cfg.source!r}")
  arrays = loaders.load_arrays(source, keys=("image_a", "image_b"))
  if arrays["image_a"].shape != arrays["image_b"].shape:
    raise ValueError(
      "left and right images go through one shared encoder and must have the same shape, "
      f"got {arrays['image_a'].shape} and {arrays['image_b'].shape}"
    )
  return ArrayPairSource(arrays["image_a"], arrays["image_b"], arrays["identity"])


def _retrieval(model, variables, pairs: ArrayPairSource, records: np.ndarray, ks, batch_size):
  left = inference.embed(model, variables, pairs.images_a[records], "a", batch_size)
  right = inference.embed(model, variables, pairs.images_b[records], "a", batch_size)
  labels = pairs.identities[records]
  return left, right, retrieval.retrieval_metrics(left, right, labels, labels, ks=ks)


def _test_metrics(left, right, labels) -> dict[str, float]:
  n = len(labels)
  ks = sorted({1, 5, 10, n})
  m = retrieval.retrieval_metrics(left, right, labels, labels, ks=ks)
  out = {k: m[k] for k in ("recall_at_1", "recall_at_5", "recall_at_10", "map_at_r", "mrr_at_10")}
  out["mrr"] = m[f"mrr_at_{n}"]
  out["gallery_size"] = float(n)
  return out


def partner_ranks(left: np.ndarray, right: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """[Q] rank of each left query's partner among the right gallery (1 = first).

  One relevant item per query (its pair's right image). Ties count against the query:
  rank = 1 + the number of gallery items scoring at least as high, other than the partner.
  """
  labels = np.asarray(labels).reshape(-1)
  relevant = labels[:, None] == labels[None, :]
  if not np.all(relevant.sum(1) == 1):
    raise ValueError("each query needs exactly one relevant gallery item (its partner)")
  s = search.tiled_pairwise_scores(left, right, "cosine")
  partner = s[relevant]
  return 1 + np.sum((s >= partner[:, None]) & ~relevant, axis=1)


def subject_intervals(
  ranks: np.ndarray, identities: np.ndarray, num_resamples: int, seed: int
) -> dict[str, float]:
  """R@1, R@10, MAP@R and MRR with 95% intervals by a bootstrap over query identities.

  Each query (a left image) is a unit; queries of one identity are drawn together. The
  gallery stays fixed, so the intervals are conditional on it.
  """
  ranks = np.asarray(ranks, np.float64)
  per_query = {
    "recall_at_1": ranks <= 1,
    "recall_at_10": ranks <= 10,
    "map_at_r": ranks <= 1,  # one relevant item: AP@R is 1 at rank 1, else 0
    "mrr": 1 / ranks,
  }

  def statistic(weights):
    w = np.asarray(weights, np.float64)
    return {k: float(w @ v / w.sum()) for k, v in per_query.items()}

  return clustered.subject_bootstrap(statistic, identities, num_resamples=num_resamples, seed=seed)


def chance_metrics(n: int) -> dict[str, float]:
  """Expected metrics of a random ranking of a gallery of n items with one relevant item."""
  harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
  return {
    "recall_at_1": 1.0 / n,
    "recall_at_5": min(5, n) / n,
    "recall_at_10": min(10, n) / n,
    "map_at_r": 1.0 / n,
    "mrr": harmonic / n,
    "mrr_at_10": float(np.sum(1.0 / np.arange(1, min(10, n) + 1))) / n,
  }


def _summary(per_seed: list[dict[str, float]]) -> dict[str, float]:
  out = {}
  for key in _REPORTED:
    values = np.array([m[key] for m in per_seed], np.float64)
    out[f"{key}_mean"] = float(values.mean())
    out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    out[f"{key}_min"] = float(values.min())
    out[f"{key}_max"] = float(values.max())
  return out


def _train_one(config, loss_cfg, seed, pairs, records, workdir):
  """Trains one (loss, seed) model with validation selection; returns its test outputs."""
  model = models.model_from_config(config.model)
  loss_fn = objectives.objective_from_config(
    {k: v for k, v in dict(loss_cfg).items() if k != "margin_grid"}
  )
  cfg = config.train.copy_and_resolve_references()
  cfg.seed = seed
  ds = pipeline.two_tower_batches(
    pairs,
    records["train"],
    batch_size=cfg.batch_size,
    seed=seed,
    augment=config.data.augment,
  )
  train_iter = pipeline.make_iterator(ds)
  ks = tuple(config.eval.ks)

  def eval_fn(state):
    _, _, m = _retrieval(
      model, inference.variables_of(state), pairs, records["val"], ks, config.eval.batch_size
    )
    return {k: m[k] for k in ("recall_at_1", "recall_at_5", "mrr_at_10")}

  variables, info = train.fit_selected(
    cfg,
    model=model,
    loss_fn=loss_fn,
    train_iter=train_iter,
    workdir=workdir,
    inputs=train.PAIR_INPUTS,
    eval_fn=eval_fn,
  )
  test = records["test"]
  left = inference.embed(model, variables, pairs.images_a[test], "a", config.eval.batch_size)
  right = inference.embed(model, variables, pairs.images_b[test], "a", config.eval.batch_size)
  labels = pairs.identities[test]
  metrics = _test_metrics(left, right, labels)
  boot = subject_intervals(
    partner_ranks(left, right, labels), labels, config.eval.bootstrap_resamples, seed
  )
  metrics.update({k: v for k, v in boot.items() if "_ci_" in k})
  metrics["ci_num_identities"] = boot["num_subjects"]
  return metrics, info, left, right


def _train_tuned(config, loss_name, seed, pairs, records, workdir):
  """`_train_one`, with the margin chosen on this seed's validation split when a grid is set.

  Each margin of ``loss.<name>.margin_grid`` is trained with the same seed and batches;
  the one whose selected checkpoint has the best validation metric wins (the first
  on ties). Test figures are those of the winner only.
  """
  loss_cfg = config.loss[loss_name]
  grid = tuple(loss_cfg.get("margin_grid", ()) or ())
  if not grid:
    return _train_one(config, loss_cfg, seed, pairs, records, workdir)
  best, tried = None, {}
  for margin in grid:
    cfg = dict(loss_cfg)
    cfg["margin"] = margin
    out = _train_one(config, cfg, seed, pairs, records, workdir / f"margin{margin:g}")
    tried[margin] = out[1]["best_val"]
    print(
      f"[similarity_search] {loss_name} seed {seed} margin {margin:g}: validation "
      f"{config.train.best_metric} {tried[margin]:.3f}",
      flush=True,
    )
    if best is None or tried[margin] > tried[best[0]]:
      best = (margin, out)
  margin, (metrics, info, left, right) = best
  info = dict(info)
  info["margin"] = float(margin)
  info.update({f"val_{config.train.best_metric}_margin_{m:g}": v for m, v in tried.items()})
  return metrics, info, left, right


def _grid(pairs, test, left, right, num_queries, k, path):
  _, idx = search.top_k_search(left[:num_queries], right, k, "cosine")
  correct = idx == np.arange(num_queries)[:, None]
  neighbours = pairs.images_b[test][idx]
  return report.plot_retrieval_grid(pairs.images_a[test][:num_queries], neighbours, correct, path)


def run(config, workdir: pathlib.Path) -> dict:
  """Trains both losses over `num_seeds` seeds, evaluates, writes metrics, report, figures."""
  workdir = pathlib.Path(workdir)
  losses = tuple(config.losses)
  unknown = set(losses) - set(LOSSES)
  if unknown:
    raise ValueError(f"config.losses must be drawn from {LOSSES}, got {sorted(unknown)}")
  if config.num_seeds < 1:
    raise ValueError(f"config.num_seeds must be >= 1, got {config.num_seeds}")
  start = time.perf_counter()
  pairs = load_pairs(config.data)
  fractions = {"train": config.data.train_fraction, "val": config.data.val_fraction}
  fractions["test"] = 1.0 - fractions["train"] - fractions["val"]

  per_loss: dict[str, list[dict[str, float]]] = {name: [] for name in losses}
  selection: dict[str, dict[str, float]] = {}
  figures = {}
  gallery_sizes = []
  for s in range(config.num_seeds):
    seed = config.seed + s
    groups, records = splits.split_records(pairs.identities, fractions, seed=seed)
    extra = {"data": config.data.source, "split_seed": seed}
    report.write_manifest(
      splits.manifest(groups, records=records, extra=extra), workdir / f"seed{seed}"
    )
    gallery_sizes.append(len(records["test"]))
    for name in losses:
      metrics, info, left, right = _train_tuned(
        config, name, seed, pairs, records, workdir / name / f"seed{seed}"
      )
      per_loss[name].append(metrics)
      selection[f"{name}_seed{seed}"] = info
      print(
        f"[similarity_search] {name} seed {seed}: test R@1 {metrics['recall_at_1']:.3f} "
        f"R@10 {metrics['recall_at_10']:.3f} MRR {metrics['mrr']:.3f} "
        f"(best val step {int(info['best_step'])}"
        + (f", margin {info['margin']:g} chosen on validation" if "margin" in info else "")
        + ")",
        flush=True,
      )
      if s == 0:
        path = _grid(
          pairs,
          records["test"],
          left,
          right,
          min(config.eval.figure_queries, len(records["test"])),
          min(config.eval.figure_k, len(records["test"])),
          workdir / f"retrieval_{name}.png",
        )
        if path is not None:
          figures[f"{name} (seed {seed}): test left queries and their top right images"] = path

  n = int(np.median(gallery_sizes))
  metrics: dict = {
    "test": {name: _summary(per_loss[name]) for name in losses},
    "chance": chance_metrics(n),
    "per_seed": {
      f"{name}_seed{config.seed + s}": per_loss[name][s]
      for name in losses
      for s in range(config.num_seeds)
    },
    "selection": selection,
  }
  if set(LOSSES) <= set(losses):
    diff = {}
    for key in _REPORTED:
      d = np.array(
        [t[key] - c[key] for t, c in zip(per_loss["triplet"], per_loss["contrastive"], strict=True)]
      )
      diff[f"{key}_mean"] = float(d.mean())
      diff[f"{key}_std"] = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    metrics["triplet_minus_contrastive"] = diff
  metrics["wall_seconds"] = time.perf_counter() - start

  sentences = [
    f"Data: {config.data.source} ({len(pairs)} pairs); identity-disjoint splits "
    f"{fractions}; test gallery of N = {n} right images queried by the {n} left images "
    f"(median over seeds). Chance: R@1 = 1/N = {1 / n:.4f}, R@10 = {min(10, n) / n:.4f}, "
    f"MRR = H_N/N = {chance_metrics(n)['mrr']:.4f}.",
    "Conventions: R@K = fraction of queries whose partner is in the top K; MRR over the "
    "whole gallery, MRR@10 truncated at rank 10 (the seed project's 'mAP@10'); MAP@R with "
    "one relevant item equals R@1. Mean +- sample std (ddof=1) over "
    f"{config.num_seeds} seeds (split and initialisation seed both vary); models selected by "
    f"validation {config.train.best_metric} every {config.train.eval_every} steps.",
  ]
  lines = ["| loss | R@1 | R@5 | R@10 | MAP@R | MRR | MRR@10 |", "|---|---|---|---|---|---|---|"]
  for name in losses:
    t = metrics["test"][name]
    cells = [f"{t[k + '_mean']:.3f} +- {t[k + '_std']:.3f}" for k in _REPORTED]
    lines.append(f"| {name} ({config.loss[name].name}) | " + " | ".join(cells) + " |")
  c = metrics["chance"]
  lines.append("| chance | " + " | ".join(f"{c[k]:.3f}" for k in _REPORTED) + " |")
  sentences.append("\n".join(lines))
  ci_keys = ("recall_at_1", "recall_at_10", "map_at_r", "mrr")
  lines = [
    "Per seed, with 95% intervals by a bootstrap over the test query identities "
    f"({config.eval.bootstrap_resamples} resamples; each left query is one identity; the "
    "gallery is held fixed):",
    "",
    "| loss | seed | margin (chosen on this seed's validation) | R@1 | R@10 | MAP@R | MRR |",
    "|---|---|---|---|---|---|---|",
  ]
  for name in losses:
    for s in range(config.num_seeds):
      key = f"{name}_seed{config.seed + s}"
      m, info = metrics["per_seed"][key], selection[key]
      if "margin" in info:
        tried = ", ".join(
          f"{k.rsplit('_', 1)[1]}: {v:.3f}" for k, v in info.items() if "_margin_" in k
        )
        margin = f"{info['margin']:g} (val {config.train.best_metric} {tried})"
      else:
        margin = f"{config.loss[name].get('margin', float('nan')):g} (fixed)"
      cells = [f"{m[k]:.3f} [{m[k + '_ci_low']:.3f}, {m[k + '_ci_high']:.3f}]" for k in ci_keys]
      lines.append(f"| {name} | {config.seed + s} | {margin} | " + " | ".join(cells) + " |")
  lines.append("")
  lines.append(
    "95% CI over "
    + ", ".join(str(g) for g in gallery_sizes)
    + " test query identities (seeds "
    + ", ".join(str(config.seed + s) for s in range(config.num_seeds))
    + "; each seed has its own split)."
  )
  sentences.append("\n".join(lines))
  report.write_metrics_json(metrics, workdir)
  report.write_report_md(
    metrics,
    workdir,
    "Similarity search: contrastive vs triplet",
    figures=figures,
    sentences=sentences,
  )
  print("\n".join(lines))
  print(f"[similarity_search] wall time {metrics['wall_seconds']:.0f} s")
  return metrics

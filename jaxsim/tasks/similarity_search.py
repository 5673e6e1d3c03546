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
`split.num_seeds` times (seed s: split seed s and initialisation seed s), and the
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

import functools
import pathlib
import time

import numpy as np

from jaxsim import baselines, inference, models, objectives, report, train
from jaxsim.data import loaders, pipeline, splits
from jaxsim.evaluate import retrieval, search, seeds

LOSSES = ("contrastive", "triplet")
_REPORTED = ("recall_at_1", "recall_at_5", "recall_at_10", "map_at_r", "mrr", "mrr_at_10")
_CI_KEYS = ("recall_at_1", "recall_at_10", "map_at_r", "mrr")


def HEADLINE(metrics):  # noqa: N802 -- the tasks' summary-table hook; rows depend on the losses
  rows = {
    "{name} test R@1 (mean over seeds)": "test.{name}.recall_at_1_mean",
    "{name} test MRR (mean over seeds)": "test.{name}.mrr_mean",
  }
  return {**report.headline_rows(metrics["test"], rows), "chance R@1": "chance.recall_at_1"}


def prepare(config):
  """The pairs (decoded once) and the split fractions; checks the loss and seed settings."""
  unknown = set(config.train.losses) - set(LOSSES)
  if unknown:
    raise ValueError(f"config.train.losses must be drawn from {LOSSES}, got {sorted(unknown)}")
  if config.split.num_seeds < 1:
    raise ValueError(f"config.split.num_seeds must be >= 1, got {config.split.num_seeds}")
  fractions = {"train": config.split.train, "val": config.split.val}
  fractions["test"] = 1.0 - fractions["train"] - fractions["val"]
  return loaders.load_lookalike_pairs(config.data), fractions


def _embed_sides(model, variables, pairs, records, batch_size):
  left = inference.embed(model, variables, pairs.images_a[records], "a", batch_size)
  right = inference.embed(model, variables, pairs.images_b[records], "a", batch_size)
  return left, right, pairs.identities[records]


def _train_one(config, loss_cfg, seed, pairs, records, workdir):
  """Trains one (loss, seed) model with validation selection: (model, variables, info)."""
  model = models.model_from_config(config.model)
  loss_fn = objectives.objective_from_config(
    {k: v for k, v in dict(loss_cfg).items() if k != "margin_grid"}
  )
  cfg = config.train.copy_and_resolve_references()
  cfg.seed = seed
  ds = pipeline.two_tower_batches(
    pairs, records["train"], batch_size=cfg.batch_size, seed=seed, augment=config.data.augment
  )
  ks, bs = tuple(config.eval.ks), config.eval.batch_size

  def eval_fn(state):
    left, right, labels = _embed_sides(
      model, inference.variables_of(state), pairs, records["val"], bs
    )
    m = retrieval.retrieval_metrics(left, right, labels, labels, ks=ks)
    return {k: m[k] for k in ("recall_at_1", "recall_at_5", "mrr_at_10")}

  variables, info = train.fit_selected(
    cfg,
    model=model,
    loss_fn=loss_fn,
    train_iter=pipeline.make_iterator(ds),
    workdir=workdir,
    inputs=train.PAIR_INPUTS,
    eval_fn=eval_fn,
  )
  return model, variables, info


def train_loss(config, loss_name, seed, pairs, records, workdir):
  """`_train_one`, with the margin chosen on this seed's validation split when a grid is set.

  Each margin of ``loss.<name>.margin_grid`` is trained with the same seed and batches;
  the one whose selected checkpoint has the best validation metric wins (the first
  on ties). Test figures are those of the winner only.
  """
  loss_cfg = config.loss[loss_name]
  grid = tuple(loss_cfg.get("margin_grid", ()) or ())
  if not grid:
    return _train_one(config, loss_cfg, seed, pairs, records, workdir)

  def fit_one(margin):
    cfg = {**dict(loss_cfg), "margin": margin}
    return _train_one(config, cfg, seed, pairs, records, workdir / f"margin{margin:g}")

  margin, (model, variables, info), tried = train.select_on_grid(grid, fit_one)
  info = {**info, "margin": float(margin)}
  info.update({f"val_{config.train.best_metric}_margin_{m:g}": v for m, v in tried.items()})
  return model, variables, info


def evaluate(config, model, variables, pairs, records, seed):
  """Test retrieval of left queries against right partners, with identity intervals."""
  ev = config.eval
  left, right, labels = _embed_sides(model, variables, pairs, records["test"], ev.batch_size)
  search_args = (ev.search_backend, ev.search_params, ev.search_k)
  ranks = retrieval.partner_ranks(left, right, labels, *search_args)
  metrics = retrieval.partner_metrics(left, right, labels, *search_args, ranks=ranks)
  boot = retrieval.partner_rank_intervals(ranks, labels, ev.bootstrap_resamples, seed)
  metrics.update({k: v for k, v in boot.items() if "_ci_" in k})
  metrics["ci_num_identities"] = boot["num_subjects"]
  return metrics, left, right


def _grid_figure(config, pairs, test, left, right, path):
  num_queries, k = min(config.eval.figure_queries, len(test)), min(config.eval.figure_k, len(test))
  _, idx = search.top_k_search(left[:num_queries], right, k, "cosine")
  correct = idx == np.arange(num_queries)[:, None]
  neighbours = pairs.images_b[test][idx]
  return report.plot_retrieval_grid(pairs.images_a[test][:num_queries], neighbours, correct, path)


def run_seed(config, seed, pairs, fractions, workdir, figures) -> tuple[dict, dict, int]:
  """One split seed: every loss trained, selected and tested; (metrics, selection, gallery)."""
  groups, records = splits.split_records(pairs.identities, fractions, seed=seed)
  extra = {"data": config.data.source, "split_seed": seed}
  report.write_manifest(
    splits.manifest(groups, records=records, extra=extra), workdir / f"seed{seed}"
  )
  metrics, selection = {}, {}
  for name in config.train.losses:
    model, variables, info = train_loss(
      config, name, seed, pairs, records, workdir / name / f"seed{seed}"
    )
    metrics[name], left, right = evaluate(config, model, variables, pairs, records, seed)
    selection[f"{name}_seed{seed}"] = info
    if seed == config.seed:
      path = _grid_figure(
        config, pairs, records["test"], left, right, workdir / f"retrieval_{name}.png"
      )
      if path is not None:
        figures[f"{name} (seed {seed}): test left queries and their top right images"] = path
  if config.eval.baselines:  # classical image baselines on the same queries and gallery
    metrics["baselines"] = baselines.partner_retrieval_report(
      baselines.FACE_BASELINES,
      pairs.images_a,
      pairs.images_b,
      pairs.identities,
      records,
      config.eval.bootstrap_resamples,
      seed,
    )
  return metrics, selection, len(records["test"])


def summarise(config, per_loss, selection, gallery_sizes) -> dict:
  """Mean +- std over seeds, chance, per-seed figures and the paired triplet - contrastive."""
  losses, n = tuple(config.train.losses), int(np.median(gallery_sizes))
  metrics: dict = {
    "test": {name: seeds.summary(per_loss[name], _REPORTED) for name in losses},
    "chance": retrieval.partner_chance_metrics(n),
    "per_seed": {
      f"{name}_seed{config.seed + s}": per_loss[name][s]
      for name in losses
      for s in range(config.split.num_seeds)
    },
    "selection": selection,
  }
  if set(LOSSES) <= set(losses):
    metrics["triplet_minus_contrastive"] = seeds.paired_difference(
      per_loss["triplet"], per_loss["contrastive"], _REPORTED
    )
  return metrics


def _margin_cell(config, name, info) -> str:
  if "margin" not in info:
    return f"{config.loss[name].get('margin', float('nan')):g} (fixed)"
  tried = ", ".join(f"{k.rsplit('_', 1)[1]}: {v:.3f}" for k, v in info.items() if "_margin_" in k)
  return f"{info['margin']:g} (val {config.train.best_metric} {tried})"


def sentences(config, metrics, num_pairs, fractions, gallery_sizes) -> list[str]:
  """The report's findings: data and chance, conventions, the seed table, the per-seed table."""
  n, seeds_list = (
    int(np.median(gallery_sizes)),
    [config.seed + s for s in range(config.split.num_seeds)],
  )
  chance = metrics["chance"]
  table = ["| loss | R@1 | R@5 | R@10 | MAP@R | MRR | MRR@10 |", "|---|---|---|---|---|---|---|"]
  for name in config.train.losses:
    t = metrics["test"][name]
    cells = [f"{t[k + '_mean']:.3f} +- {t[k + '_std']:.3f}" for k in _REPORTED]
    table.append(f"| {name} ({config.loss[name].name}) | " + " | ".join(cells) + " |")
  table.append("| chance | " + " | ".join(f"{chance[k]:.3f}" for k in _REPORTED) + " |")
  per_seed = [
    "Per seed, with 95% intervals by a bootstrap over the test query identities "
    f"({config.eval.bootstrap_resamples} resamples; each left query is one identity; the "
    "gallery is held fixed):",
    "",
    "| loss | seed | margin (chosen on this seed's validation) | R@1 | R@10 | MAP@R | MRR |",
    "|---|---|---|---|---|---|---|",
  ]
  ci = functools.partial(report.with_ci, digits=3)
  for name in config.train.losses:
    for seed in seeds_list:
      key = f"{name}_seed{seed}"
      m, margin = metrics["per_seed"][key], _margin_cell(config, name, metrics["selection"][key])
      per_seed.append(
        f"| {name} | {seed} | {margin} | " + " | ".join(ci(m, k) for k in _CI_KEYS) + " |"
      )
  per_seed += [
    "",
    f"95% CI over {', '.join(map(str, gallery_sizes))} test query identities (seeds "
    f"{', '.join(map(str, seeds_list))}; each seed has its own split).",
  ]
  return [
    f"Data: {config.data.source} ({num_pairs} pairs); identity-disjoint splits "
    f"{fractions}; test gallery of N = {n} right images queried by the {n} left images "
    f"(median over seeds). Chance: R@1 = 1/N = {1 / n:.4f}, R@10 = {min(10, n) / n:.4f}, "
    f"MRR = H_N/N = {chance['mrr']:.4f}.",
    "Conventions: R@K = fraction of queries whose partner is in the top K; MRR over the "
    "whole gallery, MRR@10 truncated at rank 10 (the seed project's 'mAP@10'); MAP@R with "
    "one relevant item equals R@1. Mean +- sample std (ddof=1) over "
    f"{config.split.num_seeds} seeds (split and initialisation seed both vary); models selected by "
    f"validation {config.train.best_metric} every {config.train.eval_every} steps.",
    "\n".join(table),
    "\n".join(per_seed),
  ]


def run(config, workdir: pathlib.Path) -> dict:
  """Prepare -> per seed: split, train each loss, test -> summarise over seeds -> describe."""
  workdir, start = pathlib.Path(workdir), time.perf_counter()
  pairs, fractions = prepare(config)
  per_loss = {name: [] for name in (*config.train.losses, "baselines")}
  selection, figures, gallery_sizes = {}, {}, []
  for s in range(config.split.num_seeds):
    m, sel, size = run_seed(config, config.seed + s, pairs, fractions, workdir, figures)
    for name in m:
      per_loss[name].append(m[name])
    selection.update(sel)
    gallery_sizes.append(size)
  metrics = summarise(config, per_loss, selection, gallery_sizes)
  if per_loss["baselines"]:
    metrics["baselines"] = {
      n: seeds.summary([b[n] for b in per_loss["baselines"]], _CI_KEYS)
      for n in per_loss["baselines"][0]
    }
  metrics["wall_seconds"] = time.perf_counter() - start
  text = sentences(config, metrics, len(pairs), fractions, gallery_sizes)
  if "baselines" in metrics:
    what = "the same test queries and gallery"
    text.append(baselines.seed_summary_sentence(metrics["baselines"], _CI_KEYS, what))
  report.write_metrics_json(metrics, workdir)
  title = "Similarity search: contrastive vs triplet"
  report.write_report_md(metrics, workdir, title, figures=figures, sentences=text)
  return metrics

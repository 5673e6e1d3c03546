"""Omniglot one-shot classification, trained on background alphabets (Koch et al. 2015).

    python -m experiments.run --config=omniglot            # cosine-softmax Conv-4 (default)
    python -m experiments.run --config=omniglot:seed       # Koch's published Siamese recipe
    python -m experiments.run --config=omniglot:runlocal   # ~2 min smoke run

What it does:
- Reads the background set (zip or folder) and splits it as Koch did, by alphabet and
  by drawer: training alphabets and drawers; validation and test alphabets, drawn from
  those with enough characters for 20-way within-alphabet trials, whose images come
  only from the other (evaluation) drawers. The manifest is `split_manifest.json`.
- Builds `eval.num_runs` 20-way one-shot runs from the test alphabets in Lake et al.'s
  layout (`runs_test/runNN/...`); `eval.runs_root` adds any folder of such runs (the
  20 standard runs of the evaluation set, for instance).
- Trains every model in `config.model` on the training alphabets with Koch's affine
  distortions drawn on the fly (`pipeline.koch_affine`, deterministic per seed and
  resumable), and keeps the checkpoint with the best 20-way one-shot accuracy on
  validation-alphabet episodes (scored without the test-time shift averaging). Test
  alphabets are used for nothing but the test.
- Scores N-way k-shot episodes of the test alphabets (`eval.ways` x `eval.shots`,
  `eval.episodes` each, 95% intervals over episodes) and the runs (bootstrap interval
  over runs), and draws one run. The same episodes and runs score a classical baseline,
  nearest prototype on raw pixels (`oneshot.pixel_baseline`, chosen on validation).

Embedding models classify by the nearest class prototype (`oneshot.prototype_scorer`),
Koch's model by its L1 pair head averaged over the shots (`oneshot.pair_scorer`).
"""

from __future__ import annotations

import pathlib

import jax
import numpy as np

from jaxsim import describe, inference, objectives, report, train
from jaxsim.data import pipeline, splits
from jaxsim.data.sources import omniglot
from jaxsim.evaluate import oneshot

PUBLISHED = {  # 20-way one-shot accuracy, as published (protocol in the README)
  "Koch et al. 2015, Siamese, Lake's 20 within-alphabet runs": 0.920,
  "Lake et al. 2015, people, same runs": 0.955,
  "Lake et al. 2015, Bayesian Program Learning, same runs": 0.967,
  "Snell et al. 2017, ProtoNets 28x28, Vinyals split (not within-alphabet)": 0.960,
}


def HEADLINE(metrics):  # noqa: N802 -- the tasks' summary-table hook
  models = [k for k in metrics if k not in ("data", "published")]  # "pixels" included
  rows = {
    "{name} 20-way 1-shot, test-alphabet runs": "{name}.one_shot_runs.accuracy",
    "{name} 20-way 1-shot, eval.runs_root runs": "{name}.one_shot_runs_given.accuracy",
    "{name} 20-way 1-shot episodes": "{name}.episodes.20way_1shot.accuracy",
    "{name} 5-way 1-shot episodes": "{name}.episodes.5way_1shot.accuracy",
    "{name} selected step": "{name}.train.select_best_step",
  }
  return report.headline_rows(models, rows)


def prepare(config, workdir: pathlib.Path) -> dict:
  """Images at every model's input size, the split, the test runs and the episodes."""
  if config.eval.tta_shift % config.eval.get("tta_step", 1):
    raise ValueError(
      f"eval.tta_shift={config.eval.tta_shift} must be a multiple of "
      f"eval.tta_step={config.eval.tta_step}; change one of them"
    )
  sizes = sorted({int(m.input_size) for m in config.model.values()})
  sources = omniglot.load_omniglot_sizes(config.data.root, sizes)
  src, ev = sources[sizes[0]], config.eval
  split = split_and_manifest(config, src, workdir)
  val, test, way = split["records"]["val"], split["records"]["test"], max(ev.ways)
  runs = {"one_shot_runs": test_runs(config, src, test, workdir / "runs_test")}
  if ev.runs_root:
    runs["one_shot_runs_given"] = (pathlib.Path(ev.runs_root), oneshot.read_runs(ev.runs_root))
  episodes = {
    (w, k): _episodes(src, test, config, w, k, ev.episodes, seed=config.seed + 2)
    for w in ev.ways
    for k in ev.shots
  }
  return {
    "sources": sources,
    "split": split,
    "names": {k: [src.alphabet_names[g] for g in v] for k, v in split["groups"].items()},
    "runs": runs,
    "val_episodes": _episodes(src, val, config, way, 1, ev.val_episodes, seed=config.seed + 1),
    "episodes": episodes,
  }


def split_and_manifest(config, src, workdir: pathlib.Path) -> dict:
  """Koch's alphabet-and-drawer split (`splits.group_and_drawer_split`), checked against
  the episodes' needs and written as `split_manifest.json`."""
  sp, ev = config.split, config.eval
  split = splits.group_and_drawer_split(
    src.identities,
    src.alphabets,
    src.drawers,
    num_val=sp.num_val_alphabets,
    num_test=sp.num_test_alphabets,
    num_train_drawers=sp.num_train_drawers,
    min_eval_classes=max(ev.ways),
    seed=sp.seed,
    val_fold=sp.get("val_fold", 0),
  )
  if max(ev.shots) + ev.queries > len(split["drawers"]["eval"]):
    raise ValueError(
      f"eval.shots up to {max(ev.shots)} plus eval.queries={ev.queries} need that many "
      f"evaluation drawers, but split.num_train_drawers={sp.num_train_drawers} leaves "
      f"{len(split['drawers']['eval'])}; lower one of them"
    )
  records = split["records"]
  extra = {
    "data": src.describe(),
    "alphabets": {k: [src.alphabet_names[g] for g in v] for k, v in split["groups"].items()},
    "drawers": {k: v.tolist() for k, v in split["drawers"].items()},
    "split_seed": sp.seed,
    "val_fold": sp.get("val_fold", 0),
  }
  characters = {k: np.unique(src.identities[r]) for k, r in records.items()}
  names = src.character_names
  man = splits.manifest(characters, identity_names=names, records=records, extra=extra)
  report.write_manifest(man, workdir)
  return split


def test_runs(config, src, test: np.ndarray, root: pathlib.Path) -> tuple:
  """`eval.num_runs` 20-way one-shot runs of the test records, written in Lake et al.'s
  layout under `root` and read back: `(root, runs)`."""
  files = oneshot.run_files(
    lambda i: src.png_bytes(test[i]),
    src.identities[test],
    src.drawers[test],
    src.alphabets[test],
    num_runs=config.eval.num_runs,
    way=max(config.eval.ways),
    seed=config.seed,
  )
  report.write_files(files, root)
  return root, oneshot.read_runs(root)


def _episodes(src, records, config, way, shot, num, seed) -> oneshot.Episodes:
  """Episodes over `records` (indices into them), within alphabets unless configured not."""
  groups = src.alphabets[records] if config.eval.within_alphabet else None
  return oneshot.sample_episodes(
    src.identities[records],
    src.drawers[records],
    way=way,
    shot=shot,
    queries=config.eval.queries,
    num=num,
    groups=groups,
    seed=seed,
  )


def scorer_for(config, name, data, model, variables):
  """`(feature_map, scorer)`: Koch's pair head (mean logit over shots) on raw features,
  or `oneshot.fit_prototype_scoring` with `eval.power`, `eval.center` and `eval.whiten`.
  The training mean and the whitening are fitted on training alphabets only, on
  embeddings of the unshifted images: validation 0.915 against 0.916 when fitted on
  shift-averaged ones like the features they map, at a thirtieth of the cost (README)."""
  model_cfg, ev = config.model[name], config.eval
  if model_cfg.kind == "koch":
    head = jax.jit(lambda a, b: model.apply(variables, a, b, method=model.pair_logits))
    return (lambda f: f), oneshot.pair_scorer(lambda a, b: np.asarray(head(a, b)))
  mode, whiten, feats, labels = ev.get("center", "train"), ev.get("whiten", 0.0), None, None
  if mode == "train" or whiten:
    src, train = data["sources"][int(model_cfg.input_size)], data["split"]["records"]["train"]
    if not whiten:  # a sample is enough for a mean
      train = np.random.default_rng(config.seed).choice(train, min(2000, len(train)), False)
    train = np.sort(train)
    feats = _features(config, model, variables, src.images[train], radius=0)
    labels = src.identities[train]
  metric, power = model_cfg.get("score", "euclidean"), float(ev.get("power", 1.0))
  return oneshot.fit_prototype_scoring(metric, mode, power, whiten, feats, labels)


def _features(config, model, variables, images, radius: int | None = None) -> np.ndarray:
  """Embeddings, averaged over shifts of up to `radius` (default `eval.tta_shift`)
  pixels in steps of `eval.tta_step` (radius 0: none)."""
  ev = config.eval
  radius = ev.tta_shift if radius is None else radius
  step = ev.get("tta_step", 1) if radius else 1
  return inference.embed_shift_averaged(model, variables, images, radius, ev.batch_size, step)


def train_model(config, name: str, data, workdir: pathlib.Path):
  """Trains model `name` on the training alphabets; selection on validation episodes."""
  model_cfg, tcfg = config.model[name], config.train[name]
  src = data["sources"][int(model_cfg.input_size)]
  val = data["split"]["records"]["val"]

  def val_accuracy(model, variables):
    # Without the shift averaging: (2 r + 1)^2 times cheaper, run at every evaluation.
    feats = inference.embed(model, variables, src.images[val], batch_size=config.eval.batch_size)
    feature_map, scorer = scorer_for(config, name, data, model, variables)
    feats = feature_map(feats)
    return {
      "val_accuracy": oneshot.episode_accuracy(feats, data["val_episodes"], scorer)["accuracy"]
    }

  # Training characters numbered 0..C-1 (one proxy each, for a proxy loss); with
  # `data.rotation_classes` / `mirror_classes`, turned / mirrored ones are new classes.
  records = data["split"]["records"]["train"]
  _, labels = np.unique(src.identities[records], return_inverse=True)
  d = config.data
  turns = int(d.get("rotation_classes", 1)), d.get("mirror_classes", False)
  aug = d.get("augmentation", "character")
  rotated = pipeline.RotationClassSource(src.images, labels, *turns, records=records, modality=aug)
  if objectives.uses_proxies(config.loss[name]):
    model_cfg = {**model_cfg.to_dict(), "num_proxies": int(rotated.identities.max()) + 1}
  return train.fit_on_records(
    name,
    model_cfg,
    config.loss[name],
    tcfg,
    rotated,
    np.arange(len(rotated)),
    workdir,
    eval_fn=val_accuracy,
    groups=src.alphabets[rotated.rows],
  )


def evaluate_model(config, name: str, data, model, variables) -> tuple[dict, dict]:
  """Episodes and runs of the test alphabets (and `eval.runs_root`); a run to draw."""
  model_cfg = config.model[name]
  size = int(model_cfg.input_size)
  src, test = data["sources"][size], data["split"]["records"]["test"]
  feature_map, scorer = scorer_for(config, name, data, model, variables)
  feats = feature_map(_features(config, model, variables, src.images[test]))
  out: dict = {"episodes": {}}
  for (way, shot), eps in data["episodes"].items():
    r = oneshot.episode_accuracy(feats, eps, scorer)
    r["per_alphabet"] = {src.alphabet_names[g]: v for g, v in r.pop("per_group").items()}
    out["episodes"][f"{way}way_{shot}shot"] = r
  drawn = {}
  for key, (root, runs) in data["runs"].items():

    def features_of(paths, root=root):
      return feature_map(
        _features(config, model, variables, omniglot.read_run_images(root, paths, size))
      )

    r = oneshot.score_runs(runs, features_of, scorer, seed=config.seed)
    drawn[key] = (root, runs[0], r.pop("scores")[0])
    out[key] = {**r, "root": str(root)}
  return out, drawn


def run_figure(name: str, drawn: tuple, size: int, path: pathlib.Path):
  root, run, scores = drawn
  images = omniglot.read_run_images(root, [run.test[0], *run.training], size)
  right = int(np.argmax(scores[0])) == int(run.label[0])
  return report.plot_one_shot_run(
    images[0],
    images[1:],
    scores[0],
    int(run.label[0]),
    path,
    title=f"{name}, {run.name}, {run.test[0]}: {'right' if right else 'wrong'}",
  )


def run(config, workdir: pathlib.Path) -> dict:
  """Prepare -> train and evaluate each model -> describe."""
  workdir = pathlib.Path(workdir)
  data = prepare(config, workdir)
  src, names = next(iter(data["sources"].values())), ("alphabets", "characters")
  metrics: dict = {"data": splits.group_and_drawer_counts(data["split"], src.identities, *names)}
  sentences = [describe.one_shot_data_sentence(src.describe(), data["names"], metrics["data"])]
  figures = {}
  for name in config.model:
    model, variables, train_info = train_model(config, name, data, workdir)
    metrics[name], drawn = evaluate_model(config, name, data, model, variables)
    metrics[name]["train"] = train_info
    sentences.append(describe.one_shot_sentence(name, metrics[name]))
    caption = f"{name}: one 20-way one-shot trial (scores below each candidate)"
    figures[caption] = run_figure(
      name, drawn["one_shot_runs"], int(config.model[name].input_size), workdir / f"run_{name}.png"
    )
  size, rec = min(data["sources"]), data["split"]["records"]  # the baseline, at this size
  images = data["sources"][size].images
  metrics["pixels"] = oneshot.pixel_baseline(
    images[rec["val"]],
    data["val_episodes"],
    images[rec["test"]],
    data["episodes"],
    data["runs"],
    lambda root, paths: omniglot.read_run_images(root, paths, size),
    seed=config.seed,
  )
  sentences.append(describe.pixel_baseline_sentence(metrics["pixels"], size))
  metrics["published"] = dict(PUBLISHED)
  report.write_metrics_json(metrics, workdir)
  report.write_report_md(metrics, workdir, "Omniglot one-shot classification", figures, sentences)
  return metrics

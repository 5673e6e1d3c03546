"""Validation accuracy of an Omniglot run's checkpoint under each scoring lever.

    python -m benchmarks.oneshot_levers --workdir=runs/omniglot [--model=proxy] [--episodes=1000]

Reads the run's `config.json`, restores its selected checkpoint (nothing is trained:
the run must be complete) and scores 20-way one-shot episodes of the validation
alphabets only (episode seed 11, not the run's own selection episodes) with:
Euclidean prototypes, cosine, cosine on features centred on the mean training
embedding, and that with embeddings averaged over shifts of up to 1, 2 and 3 pixels;
then, on the 2-pixel features, centring on the episode's supports and power transforms
(`oneshot.power_features`); last, the run's own scoring (`eval.*`) without and with
the within-class whitening (`eval.whiten` 0.5 and 0.8).
This is how the README's table of levers was measured; test alphabets are not read.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import ml_collections

from jaxsim import inference
from jaxsim.evaluate import oneshot
from jaxsim.tasks import omniglot


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--model", default="proxy")
  parser.add_argument("--episodes", type=int, default=1000)
  args = parser.parse_args()
  work = pathlib.Path(args.workdir)
  config = ml_collections.ConfigDict(json.loads((work / "config.json").read_text()))
  data = omniglot.prepare(config, work)
  model, variables, info = omniglot.train_model(config, args.model, data, work)
  src = data["sources"][int(config.model[args.model].input_size)]
  val, train = data["split"]["records"]["val"], data["split"]["records"]["train"]
  episodes = omniglot._episodes(src, val, config, 20, 1, args.episodes, seed=11)  # noqa: SLF001

  def features(radius):
    return inference.embed_shift_averaged(model, variables, src.images[val], radius, 256)

  train_feats = inference.embed(model, variables, src.images[train[::4]], batch_size=256)
  centre = train_feats.mean(0)
  sqrt_centre = oneshot.power_features(train_feats, 0.5).mean(0)
  plain = features(0)
  rows = {
    "euclidean": (plain, oneshot.prototype_scorer("euclidean")),
    "cosine": (plain, oneshot.prototype_scorer("cosine")),
    "centred cosine": (plain, oneshot.prototype_scorer("cosine", centre)),
  }
  shifted = {r: features(r) for r in (1, 2, 3)}
  for r in (1, 2, 3):
    rows[f"centred cosine, shifts <= {r} px"] = (
      shifted[r],
      oneshot.prototype_scorer("cosine", centre),
    )
  # Scoring levers on the radius-2 features (the default's shift averaging).
  rows["shifts <= 2 px, support-centred cosine"] = (
    shifted[2],
    oneshot.prototype_scorer("cosine", "supports"),
  )
  rows["shifts <= 2 px, square root, train-centred cosine"] = (
    shifted[2],
    oneshot.prototype_scorer("cosine", sqrt_centre, power=0.5),
  )
  for power in (0.3, 0.5, 0.7):
    rows[f"shifts <= 2 px, power {power}, support-centred cosine"] = (
      shifted[2],
      oneshot.prototype_scorer("cosine", "supports", power=power),
    )
  # The run's own scoring (`omniglot.scorer_for`: its shifts, power and centring), with
  # the within-class whitening off and at two shrinkages.
  radius, step = int(config.eval.tta_shift), int(config.eval.get("tta_step", 1))
  own = omniglot._features(config, model, variables, src.images[val])  # noqa: SLF001
  for whiten in (0.0, 0.5, 0.8):
    with config.unlocked():
      config.eval.whiten = whiten
    fmap, scorer = omniglot.scorer_for(config, args.model, data, model, variables)
    feats = fmap(own)
    rows[f"the run's scoring (shifts <= {radius} px, step {step}), whitening {whiten}"] = (
      feats,
      scorer,
    )
  print(
    f"{work} ({args.model}, step {int(info.get('select_best_step', 0))}): validation "
    f"20-way 1-shot, {args.episodes} episodes"
  )
  print("| scoring | accuracy [95% CI over episodes] |\n|---|---|")
  for name, (feats, scorer) in rows.items():
    r = oneshot.episode_accuracy(feats, episodes, scorer)
    print(
      f"| {name} | {r['accuracy']:.3f} [{r['accuracy_ci_low']:.3f}, {r['accuracy_ci_high']:.3f}] |"
    )


if __name__ == "__main__":
  main()

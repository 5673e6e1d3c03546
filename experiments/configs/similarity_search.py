r"""Similarity search on left/right look-alike pairs: contrastive vs triplet loss.

    python -m experiments.run --config=similarity_search
    python -m experiments.run --config=similarity_search:runlocal
    python -m experiments.run --config=similarity_search:seed
    python -m experiments.run --config=similarity_search:seed,runlocal

Real data (Totally Looks Like, `root/left/<stem>.jpg` + `root/right/<stem>.jpg`):

    python -m experiments.run --config=similarity_search \
        --config.data.source=tll --config.data.root=/path/to/tll --config.data.image_size=64

Scale up: `--config.model.encoder.width=64 --config.data.image_size=128
--config.train.batch_size=256 --config.train.steps=5000` on an accelerator.

Arguments (comma separated): `runlocal` (tiny, < 2 min, for tests), `seed` (source
project 5's recipe: ResNet18 - Linear 256 - BN - L2, triplet margin 0.2 and
contrastive margin 0.3).
"""

import ml_collections

from experiments.configs import common

VARIANTS = ("runlocal", "seed")


def get_config(arg=None):
  args = common.parse_args(arg, VARIANTS, "similarity_search")
  c = ml_collections.ConfigDict()
  c.task = "similarity_search"
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.source = "synthetic"  # synthetic | tll
  c.data.root = ""  # tll: folder with left/ and right/
  c.data.num_pairs = 1500  # synthetic only
  c.data.difficulty = 0.5  # synthetic only (1.0 does not take off within the CPU budget)
  c.data.data_seed = 0  # synthetic only: which pairs are generated
  c.data.image_size = 32
  c.data.augment = True

  c.split = ml_collections.ConfigDict()
  c.split.train = 0.7
  c.split.val = 0.15  # test gets the rest
  # Repeats: seed s uses split seed s and initialisation seed s (the spread over seeds).
  c.split.num_seeds = 3

  c.model = ml_collections.ConfigDict()
  c.model.kind = "siamese"  # left and right share the encoder, as in the seed
  c.model.encoder = ml_collections.ConfigDict(
    {
      "name": "resnet18",
      "width": 16,
      "small_inputs": False,
      "dim": 128,
      "head_batch_norm": True,
      "normalize": True,
    }
  )

  c.loss = ml_collections.ConfigDict()
  # The margin is chosen per seed on that seed's validation R@1 from `margin_grid`
  # (`margin` is unused then). The grid and the reduction come from an earlier look at
  # seed 0's validation split (400 steps): "mean" 0.080 / 0.142 / 0.160 / 0.187 at margin
  # 0.8 / 1.0 / 1.2 / 1.4; "mean_active" (average over the active terms,
  # pytorch-metric-learning's default) 0.204 at 1.0 and 0.178 at 1.4. Those identities are
  # test identities under seeds 1 and 2, so fixing the margin there would leak; the grid
  # brackets 1.0 and each seed picks on its own validation identities.
  c.loss.contrastive = ml_collections.ConfigDict(
    {
      "name": "in_batch_contrastive",
      "margin": 1.0,
      "margin_grid": (0.8, 1.0, 1.2),
      "distance": "euclidean",
      "reduction": "mean_active",
    }
  )
  c.loss.triplet = ml_collections.ConfigDict(
    {"name": "batch_hard", "margin": 0.2, "distance": "euclidean"}
  )

  c.train = common.train_defaults()
  c.train.steps = 400
  c.train.batch_size = 64  # pairs per batch: 128 images, 64 identities
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 20
  c.train.eval_every = 50
  c.train.checkpoint_every = 50  # must equal eval_every: every evaluation can be selected
  c.train.best_metric = "recall_at_1"
  c.train.log_every = 25
  c.train.losses = ("contrastive", "triplet")  # one model per loss (its `loss` entry)

  c.eval = ml_collections.ConfigDict()
  c.eval.ks = (1, 5, 10)
  c.eval.batch_size = 256
  c.eval.figure_queries = 6
  c.eval.figure_k = 5
  # Per-seed intervals: bootstrap over test query identities.
  c.eval.bootstrap_resamples = 1000
  # Classical image baselines (raw pixels, Eigenfaces, Fisherfaces, LBP) on the same test
  # queries and gallery, fitted on the training pairs.
  c.eval.baselines = True
  # Nearest-neighbour search: "exact", or a faiss index for large galleries (the `ann`
  # extra), e.g. search_backend="faiss:HNSW32", search_params="efSearch=128"; an index
  # scores each query's search_k candidates (jaxsim.evaluate.search.candidate_scores).
  c.eval.search_backend = "exact"
  c.eval.search_params = ""
  c.eval.search_k = 100

  if "seed" in args:
    # Source project 5: ResNet18 - Linear 256 - BN - L2; triplet margin 0.2, contrastive
    # margin 0.3. Its triplet mining is not stated; semi-hard (FaceNet) is the common choice.
    # Width 32 instead of 64 so that three seeds of both losses fit the CPU budget.
    c.model.encoder.width = 32
    c.model.encoder.dim = 256
    c.loss.contrastive.margin = 0.3
    c.loss.contrastive.margin_grid = ()  # the source's fixed margin
    c.loss.contrastive.reduction = "mean"
    c.loss.triplet = ml_collections.ConfigDict(
      {"name": "semi_hard", "margin": 0.2, "distance": "euclidean"}
    )
    c.train.steps = 300
  if "runlocal" in args:
    c.split.num_seeds = 2
    c.data.num_pairs = 160
    # A small CNN: at this size the ResNet-18's compilation was 69% of the run.
    c.model.encoder = ml_collections.ConfigDict(
      {"name": "conv4", "features": (8, 16, 32), "dim": 32, "normalize": True}
    )
    c.train.steps = 20
    c.train.batch_size = 16
    c.train.warmup_steps = 0
    c.train.eval_every = 10
    c.train.checkpoint_every = 10
    c.train.log_every = 10
    c.train.async_checkpoints = False
    c.eval.figure_queries = 3
    c.eval.figure_k = 3
    c.eval.bootstrap_resamples = 50
    c.loss.contrastive.margin_grid = (0.8, 1.2)
  return c

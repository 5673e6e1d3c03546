r"""Face <-> fingerprint cross-modal metric learning, its null tests, fusion and positive control.

    python -m experiments.run --config=face_fp                 # default, built-in data
    python -m experiments.run --config=face_fp:runlocal        # < 2 min, used by the tests
    python -m experiments.run --config=face_fp:seed            # the source project's recipe
    python -m experiments.run --config=face_fp:seed,runlocal

Real data ("virtual subjects": ORL face subjects paired at random with FVC2002 fingers):

    python -m experiments.run --config=face_fp:chimeric \
      --config.data.face_root=/path/to/orl_faces \
      --config.data.fingerprint_root=/path/to/fvc2002_db_b

`face_root` holds `<subject>/<image>` folders (ORL: `sN/K.pgm`); `fingerprint_root` holds
FVC2002 `DBn_B/<finger>_<impression>.tif`. A dataset that truly pairs both modalities of
each person goes in with `data.source="paired_folders"` and `data.root` laid out as
`root/face/<id>/*` and `root/fingerprint/<id>/*`.

Scale up (GPU/TPU): raise `data.num_subjects`, `data.image_size`, `model.encoder_*.width`,
`train.steps` and `train.batch_size` (a multiple of the device count).
"""

import ml_collections

from experiments.configs import common

VARIANTS = ("runlocal", "seed", "chimeric")


def _encoder(width: int, dim: int) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
    {"name": "resnet18", "width": width, "small_inputs": False, "dim": dim, "normalize": True}
  )


def get_config(arg=None):
  args = common.parse_args(arg, VARIANTS, "face_fp")
  c = ml_collections.ConfigDict()
  c.task = "face_fp"
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.source = "builtin"  # builtin | chimeric | paired_folders
  # The cross-modal headline and its positive control (the correlation sweep) share this
  # setting: many subjects, clean images. It is where the design can see a shared factor:
  # with 300 subjects x 4 images at nuisance 0.5 and 300 steps, even rho = 1 gave test AUC
  # 0.524 (0.478-0.568) while training pairs reached 0.92 (memorisation), so a chance
  # result there would say nothing about the data.
  c.data.num_subjects = 1000  # built-in; for real data 0 = as many as both modalities allow
  c.data.images_per_subject = 2  # built-in; real data: min over subjects and modalities
  c.data.correlation = 0.0  # rho of the built-in FaceFingerprintSource
  c.data.image_size = 48
  c.data.face_difficulty = 0.0  # nuisance scale (0 = clean, 1 = the generators' default)
  c.data.fingerprint_difficulty = 0.0
  c.data.face_root = ""  # chimeric: root/<subject>/<image> (ORL faces)
  c.data.fingerprint_root = ""  # chimeric: FVC2002 root with DBn_B folders
  c.data.fingerprint_databases = ("DB1_B", "DB2_B", "DB3_B")
  c.data.fingerprint_crop = 0.75  # centre crop fraction of fingerprint images (real data)
  c.data.root = ""  # paired_folders: root/face/<id>/* and root/fingerprint/<id>/*
  c.data.face_channels = 3  # 1 for greyscale face sets (ORL)
  # Real data: leave unreadable image files out (count and names go to metrics.json)
  # instead of stopping at the first one.
  c.data.skip_corrupt = False
  c.data.split = ml_collections.ConfigDict({"train": 0.6, "val": 0.2, "test": 0.2})
  # Augmentation of the cross-modal training images. Off by default: the latent the two
  # modalities share at rho > 0 is largely geometric (face width and height, eye layout;
  # fingerprint class, core position, rotation, ridge period), which rotation, scale and
  # shift jitter would blur.
  c.data.augment = False

  # The cross-modal two-tower model (face tower a, fingerprint tower b, separate weights).
  c.model = ml_collections.ConfigDict()
  c.model.kind = "two_tower"
  # A small shared space (16-d) leaves less room to memorise arbitrary face-finger pairings.
  c.model.encoder_a = _encoder(8, 16)
  c.model.encoder_b = _encoder(8, 16)
  c.model.log_temperature_init = 2.302585  # log 10, learned (CLIP)
  c.model.bias_init = None

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "clip"  # clip | pair_contrastive (seed) | in_batch_contrastive | batch_hard ...
  c.loss.margin = 0.5
  c.loss.distance = "euclidean"
  c.loss.temperature = 0.1
  c.loss.positive_fraction = 0.5  # pair_contrastive: share of positive cross-modal pairs

  c.train = common.train_defaults()
  c.train.steps = 200
  c.train.batch_size = 64
  c.train.learning_rate = 3e-3
  c.train.warmup_steps = 20
  c.train.weight_decay = 1e-4
  c.train.optimizer = "adamw"
  c.train.log_every = 50
  c.train.eval_every = 50
  c.train.checkpoint_every = 50
  c.train.best_metric = "val_auc"  # model selection on validation identities

  # The unimodal Siamese verifiers (one shared-weight encoder per modality).
  c.unimodal = ml_collections.ConfigDict()
  c.unimodal.enabled = True
  # The verifiers' own built-in data (0 / -1 = as in `data`; real data: ignored): a few
  # hundred subjects with nuisance, where neither modality alone is perfect and fusion
  # has something to add.
  c.unimodal.num_subjects = 300
  c.unimodal.images_per_subject = 4
  c.unimodal.difficulty = 0.5
  c.unimodal.encoder = _encoder(8, 64)
  c.unimodal.loss = ml_collections.ConfigDict(
    {"name": "batch_all", "margin": 0.2, "distance": "euclidean"}
  )
  c.unimodal.p = 16
  c.unimodal.k = 4
  c.unimodal.steps = 300
  c.unimodal.learning_rate = 1e-3
  c.unimodal.augment = True
  # Classical baselines (raw pixels, Eigenfaces, Fisherfaces, LBP; FingerCode for
  # fingerprints) fitted on the same training subjects and scored on the same test pairs.
  c.unimodal.baselines = True

  # Correlation sweep (positive control): one cross-modal model per rho, the headline's
  # data, nuisance and steps; rho = data.correlation reuses the main model.
  c.sweep = ml_collections.ConfigDict()
  c.sweep.correlations = (0.0, 0.25, 0.5, 0.75, 1.0)

  c.eval = ml_collections.ConfigDict()
  c.eval.num_pairs = 4000  # fixed pair list per split (half genuine), drawn once
  c.eval.bootstrap_resamples = 500  # subject (cluster) bootstrap replicates
  c.eval.permutations = 10000  # identity permutation test of "no cross-modal information"
  c.eval.fusion_rules = (
    "sum",
    "weighted_sum",
    "max",
    "product",
    "likelihood_ratio",
    "logistic_regression",
  )
  # Every rule x normalisation is a candidate; the choice is made on validation alone.
  c.eval.fusion_normalizations = ("z_score", "min_max", "tanh")
  c.eval.threshold_method = "max_accuracy"

  if "seed" in args:
    # Source project 1: separate ResNet-18 towers (ImageNet width), 256-d L2-normalised,
    # contrastive loss with margin 2.0 on half-positive cross-modal pairs, Adam 1e-4,
    # batch 64, 128x128 inputs, no validation-based selection (last epoch kept).
    # 15 epochs do not fit a CPU budget: the step count is scaled down.
    c.data.image_size = 128
    c.model.encoder_a = _encoder(64, 256)
    c.model.encoder_b = _encoder(64, 256)
    c.model.log_temperature_init = None
    c.loss.name = "pair_contrastive"
    c.loss.margin = 2.0
    c.train.optimizer = "adam"
    c.train.learning_rate = 1e-4
    c.train.schedule = "constant"
    c.train.warmup_steps = 0
    c.train.weight_decay = 0.0
    c.train.steps = 60
    c.train.eval_every = 20
    c.train.checkpoint_every = 20
    c.train.log_every = 5
    c.train.best_metric = ""
    c.sweep.correlations = ()
  if "chimeric" in args:
    c.data.source = "chimeric"
    c.data.num_subjects = 0
    c.data.face_channels = 1
    c.data.split = ml_collections.ConfigDict({"train": 0.6, "val": 0.2, "test": 0.2})
    c.sweep.correlations = ()
    c.eval.num_pairs = 2000
    c.unimodal.p = 8
  if "runlocal" in args:
    # The headline data as in the default (48 px: at 32 px the rho = 1 control stayed near
    # chance, 0.52); fewer steps, and the positive control at rho = 0 and 1 only.
    c.data.image_size = 48 if "seed" not in args else 64
    # Built-in: 150 steps, enough for the rho = 1 control; real data (no sweep): 20.
    c.train.steps = 6 if "seed" in args else 150 if c.data.source == "builtin" else 20
    c.train.eval_every = 3 if "seed" in args else min(50, c.train.steps)
    c.train.checkpoint_every = c.train.eval_every
    c.train.log_every = 50 if "seed" not in args else 1
    c.train.warmup_steps = 0
    c.unimodal.num_subjects = 100
    c.unimodal.baselines = False  # about a minute on 2 cores; tests/baselines_test.py covers them
    c.unimodal.steps = 20
    c.unimodal.p = 8
    c.sweep.correlations = (0.0, 1.0) if "seed" not in args else ()
    c.eval.num_pairs = 600
    c.eval.bootstrap_resamples = 100
    c.eval.permutations = 1000
    if "seed" in args:
      c.model.encoder_a = _encoder(16, 256)
      c.model.encoder_b = _encoder(16, 256)
  return c

"""FVC2002 fingerprint verification: a learned recipe against the classical baselines.

    PYTHONPATH=. python -m benchmarks.fvc_recipe --data=/work/shared/data/fvc2002_db_b \
      --seeds=0,1,2 --size=128 --stem=5 --batch=32 --prep=local --members=3 \
      --tta_alt -10 0 10 --out=/tmp/fvc/H3.json

(the recipe chosen on validation, `benchmarks/FVC_RECIPE_RESULTS.md`; the defaults are the
screening base, and the other levers there are flags of this script).

Protocol (as `benchmarks/baselines_real.py`): FVC2002 set B, DB1-3 (DB4 is synthetic;
`fvc2002_source` loads DB1_B..DB3_B by default), 30 fingers x 8 impressions at 192 x 192,
identities split by `splits.split_records(ids, counts={"train": 18, "val": 6, "test": 6},
seed=S)`; AUC over ALL pairs of validation (resp. test) images (1,128 pairs each). The
network sees the 18 training fingers only; the checkpoint (every --eval_every steps) with
the best validation AUC is tested. FingerCode, LBP and Fisherfaces with the PCA dimension
chosen on validation (20/40/80) are computed on the same split (cached per seed under
--cache). --members networks with different init seeds are trained per split seed and
ensembled by the mean of their val-z-normalised scores (as `benchmarks/orl_ensemble.py`).
Fusions of the learned ensemble with FingerCode / Fisherfaces (z-normalised on validation,
weight chosen on validation AUC) are reported separately, not as the learned model.

Model: `benchmarks.orl_recipe.Net` (conv3x3-BN-ReLU-maxpool blocks, flatten or global
average, Dense embedding, L2) with a CosFace head (`losses.normalized_softmax_loss`) and
optionally a batch-hard cosine triplet loss. Fingerprint-specific parts: contrast
normalisation of the input (--prep: none, hist, clahe, or a FingerCode-style local
zero-mean/unit-variance), in-step augmentation without flip (a mirrored print is another
finger): rotation, scale, shift, smooth elastic distortion, gamma; optional rotation TTA
(mean embedding over --tta_rot angles); optional pretraining on
`jaxsim.data.sources.SyntheticFingerprints` before fine-tuning on the real fingers.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import ndimage
from skimage import exposure, transform

from benchmarks.orl_recipe import PCA_DIMS, Net, all_pairs, l2n, standardise
from jaxsim import baselines, losses
from jaxsim.data import splits
from jaxsim.data.sources import SyntheticFingerprints, fvc2002_source
from jaxsim.evaluate import verification

COUNTS = {"train": 18, "val": 6, "test": 6}


class FpNet(Net):
  """`orl_recipe.Net` with an optional strided stem: conv k x k / 2 (widths[0]) -BN-ReLU,
  then the conv-BN-ReLU-pool blocks of widths[1:] (a quarter of the stride-1 cost)."""

  stem: int = 0  # stem kernel size; 0 = plain Net

  @nn.compact
  def __call__(self, x, train=False):
    widths = self.widths
    if self.stem:
      x = nn.Conv(widths[0], (self.stem, self.stem), (2, 2), padding="SAME", use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      widths = widths[1:]
    for c in widths:
      x = nn.Conv(c, (3, 3), padding="SAME", use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = x.reshape(x.shape[0], -1) if self.head == "flatten" else jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    e = nn.Dense(self.dim)(x)
    proxies = self.param("proxies", nn.initializers.normal(1.0), (self.num_classes, self.dim))
    return e, proxies


def preprocess(images, size, prep):
  """[N, H, W, 1] in [0, 1] -> [N, size, size, 1] float32 in [0, 1] (dark ridges)."""
  out = []
  for im in images[..., 0]:
    if prep == "hist":
      x = exposure.equalize_hist(im)
    elif prep == "clahe":
      x = exposure.equalize_adapthist(im, clip_limit=0.02)
    elif prep == "local":  # FingerCode's ridge-contrast equaliser, mapped to [0, 1]
      m = ndimage.gaussian_filter(im, 8.0)
      v = ndimage.gaussian_filter(np.square(im - m), 8.0)
      x = np.clip(0.5 + (im - m) / np.sqrt(v + 1e-4) / 6.0, 0, 1)
    else:
      x = im
    if size != x.shape[0]:
      x = transform.resize(x, (size, size), anti_aliasing=True)
    out.append(x)
  return np.clip(np.stack(out), 0, 1)[..., None].astype(np.float32)


def augment_fp(key, img, rot, scale, shift, elastic, gamma):
  """Random rotation/scale/shift + smooth elastic warp (bilinear, edge-clamped) and gamma."""
  h, w = img.shape[:2]
  k = jax.random.split(key, 5)
  th = jnp.deg2rad(jax.random.uniform(k[0], (), minval=-rot, maxval=rot))
  s = jnp.exp(jax.random.uniform(k[1], (), minval=-scale, maxval=scale))
  t = jax.random.uniform(k[2], (2,), minval=-shift, maxval=shift) * jnp.array([h, w])
  yy, xx = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
  )
  cy, cx = (h - 1) / 2, (w - 1) / 2
  y, x = yy - cy, xx - cx
  sy = (jnp.cos(th) * y - jnp.sin(th) * x) / s + cy + t[0]
  sx = (jnp.sin(th) * y + jnp.cos(th) * x) / s + cx + t[1]
  # Elastic: a 4x4 grid of displacements (fraction of the side) upsampled bicubically.
  d = jax.random.normal(k[3], (2, 4, 4)) * elastic * h
  d = jax.image.resize(d, (2, h, w), "cubic")
  sy, sx = jnp.clip(sy + d[0], 0, h - 1), jnp.clip(sx + d[1], 0, w - 1)
  out = jax.scipy.ndimage.map_coordinates(img[..., 0], [sy, sx], order=1, mode="nearest")
  g = jnp.exp(jax.random.uniform(k[4], (), minval=-gamma, maxval=gamma))
  return (jnp.clip(out, 1e-4, 1.0) ** g)[..., None]


def rotate_batch(x, deg):
  """Rotates [N, H, W, 1] by deg degrees about the centre (bilinear, edge-clamped)."""
  h, w = x.shape[1:3]
  th = np.deg2rad(deg)
  yy, xx = np.meshgrid(
    np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij"
  )
  y, xc = yy - (h - 1) / 2, xx - (w - 1) / 2
  sy = np.clip(np.cos(th) * y - np.sin(th) * xc + (h - 1) / 2, 0, h - 1)
  sx = np.clip(np.sin(th) * y + np.cos(th) * xc + (w - 1) / 2, 0, w - 1)
  f = jax.vmap(lambda im: jax.scipy.ndimage.map_coordinates(im[..., 0], [sy, sx], order=1))
  return f(x)[..., None]


def classical(args, seed, images, identities, records, val_pairs, test_pairs, log):
  """Val/test pair scores of FingerCode, LBP and Fisherfaces-by-val on this split (cached)."""
  path = pathlib.Path(args.cache) / f"classical_s{seed}.npz"
  if path.exists():
    return dict(np.load(path))
  out = {}
  for name, cands in (
    ("fingercode", [{}]),
    ("lbp", [{}]),
    ("fisherfaces", [{"pca_components": k} for k in PCA_DIMS]),
  ):
    t = time.perf_counter()
    model, opt, _ = baselines.fit_on_validation(
      name, images, identities, records["train"], val_pairs, cands
    )
    out[f"{name}_val"] = baselines.pair_scores(model, images, val_pairs)
    out[f"{name}_test"] = baselines.pair_scores(model, images, test_pairs)
    log(f"  classical {name} {opt} in {time.perf_counter() - t:.0f}s")
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez(path, **out)
  return out


_SYNTH = {}


def synthetic_images(args):
  """Synthetic prints [N, size, size, 1] in [0, 1] and identities, cached on disk."""
  n, size = args.pre_fingers, args.size
  key = (n, size, args.pre_difficulty)
  if key not in _SYNTH:
    path = pathlib.Path(args.cache) / f"synth_{n}_{size}_{args.pre_difficulty}.npz"
    if path.exists():
      d = np.load(path)
      _SYNTH[key] = (d["x"], d["y"])
    else:
      src = SyntheticFingerprints(n, 8, image_size=size, difficulty=args.pre_difficulty, seed=12)
      x = np.stack([src[i]["image"] for i in range(len(src))]).astype(np.float32)
      y = np.repeat(np.arange(n), 8).astype(np.int32)
      x = preprocess(x, size, args.prep)
      np.savez(path, x=x, y=y)
      _SYNTH[key] = (x, y)
  return _SYNTH[key]


def train_member(args, seed, member, imgs, identities, records, val_pairs, test_pairs, log):
  tr = records["train"]
  tr_ids = np.unique(identities[tr])
  cls = np.searchsorted(tr_ids, identities[tr]).astype(np.int32)
  init_seed = args.init_seed + member
  net = FpNet(tuple(args.widths), args.dim, len(tr_ids), args.head, args.dropout, args.stem)
  key = jax.random.PRNGKey(1000 + seed + init_seed)
  variables = net.init({"params": key}, jnp.zeros((2, *imgs.shape[1:])), train=False)
  aug = jax.vmap(
    lambda k, im: augment_fp(k, im, args.rot, args.scale, args.shift, args.elastic, args.gamma)
  )

  def make_step(net, tx, x_all, y_all, cosface, triplet):
    def loss_fn(params, stats, xb, yb, key):
      ka, kd = jax.random.split(key)
      xa = standardise(aug(jax.random.split(ka, xb.shape[0]), xb))
      (e, p), upd = net.apply(
        {"params": params, "batch_stats": stats},
        xa,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": kd},
      )
      loss, acc = 0.0, jnp.zeros(())
      if cosface > 0:
        cl, acc = losses.normalized_softmax_loss(e, p, yb, scale=args.s, margin=args.m)
        loss = loss + cosface * cl
      if triplet > 0:
        trip, _ = losses.batch_hard_triplet_loss(l2n(e), yb, margin=args.tmargin, distance="cosine")
        loss = loss + triplet * trip
      return loss, (upd["batch_stats"], acc)

    @jax.jit
    def step(params, stats, opt, key, idx):
      xb, yb = x_all[idx], y_all[idx]
      (loss, (stats, acc)), g = jax.value_and_grad(loss_fn, has_aux=True)(
        params, stats, xb, yb, key
      )
      upd, opt = tx.update(g, opt, params)
      return optax.apply_updates(params, upd), stats, opt, loss, acc

    return step

  def sampler(rng, labels, P, K):
    n = labels.max() + 1
    by = [np.flatnonzero(labels == c) for c in range(n)]

    def draw():
      chosen = rng.choice(n, P, replace=False)
      return np.concatenate([rng.choice(by[c], K, replace=False) for c in chosen])

    return draw

  def sched(steps, lr):
    return optax.warmup_cosine_decay_schedule(0.0, lr, max(1, steps // 10), steps, lr * 0.01)

  params, stats = variables["params"], variables["batch_stats"]
  rng = np.random.default_rng(seed + 7 * init_seed)
  start = time.perf_counter()
  pre_s = 0.0
  if args.pre_steps > 0:
    # Pretraining sees synthetic prints only (no split data), so it depends on the member's
    # init seed alone and is cached and shared by the split seeds (its time is logged).
    tag = "_".join(
      str(v)
      for v in (
        args.pre_steps,
        args.pre_fingers,
        args.pre_difficulty,
        args.size,
        args.prep,
        *args.widths,
        args.stem,
        args.dim,
        args.head,
        args.lr,
        args.batch,
        args.k,
        args.cosface,
        args.triplet,
        init_seed,
      )
    )
    path = pathlib.Path(args.cache) / f"pre_{tag}.pkl"
    if path.exists():
      pparams, stats, pre_s = pickle.loads(path.read_bytes())
      log(f"    pretrained weights from {path} ({pre_s:.0f}s when made)")
    else:
      xs, ys = synthetic_images(args)
      pnet = FpNet(
        tuple(args.widths), args.dim, args.pre_fingers, args.head, args.dropout, args.stem
      )
      pkey = jax.random.PRNGKey(1000 + init_seed)
      pv = pnet.init({"params": pkey}, jnp.zeros((2, *imgs.shape[1:])), train=False)
      pparams = pv["params"]
      ptx = optax.adamw(sched(args.pre_steps, args.lr), weight_decay=args.wd)
      pstep = make_step(pnet, ptx, jnp.asarray(xs), jnp.asarray(ys), args.cosface, args.triplet)
      popt = ptx.init(pparams)
      draw = sampler(np.random.default_rng(7 * init_seed), ys, args.batch // args.k, args.k)
      for t in range(1, args.pre_steps + 1):
        pparams, stats, popt, loss, acc = pstep(
          pparams, stats, popt, jax.random.PRNGKey(t + 10**6 * init_seed), jnp.asarray(draw())
        )
        if t % 100 == 0 or t == args.pre_steps:
          log(f"    pre step {t} loss {float(loss):.3f} acc {float(acc):.2f}")
      pre_s = time.perf_counter() - start
      path.write_bytes(pickle.dumps(jax.device_get((pparams, stats, pre_s))))
    params = {**pparams, "proxies": params["proxies"]}
    start = time.perf_counter()  # train_s below is the fine-tuning on the split

  tx = optax.adamw(sched(args.steps, args.ft_lr or args.lr), weight_decay=args.wd)
  opt = tx.init(params)
  step = make_step(net, tx, jnp.asarray(imgs[tr]), jnp.asarray(cls), args.cosface, args.triplet)

  @jax.jit
  def embed(params, stats, x):
    e, _ = net.apply({"params": params, "batch_stats": stats}, standardise(x), train=False)
    return l2n(e)

  tta_cache = {}

  def split_scores(params, stats, split, pairs, angles=tuple(args.tta_rot)):
    rec = records[split]
    if (split, angles) not in tta_cache:
      x = jnp.asarray(imgs[rec])
      tta_cache[split, angles] = [x if a == 0 else rotate_batch(x, a) for a in angles]
    e = np.asarray(l2n(sum(embed(params, stats, x) for x in tta_cache[split, angles])))
    row = np.full(len(identities), -1)
    row[rec] = np.arange(rec.size)
    return np.sum(e[row[pairs["a"]]] * e[row[pairs["b"]]], axis=1)

  draw = sampler(rng, cls, args.batch // args.k, args.k)
  best = {"val": -1.0}
  history = []
  for t in range(1, args.steps + 1):
    params, stats, opt, loss, acc = step(
      params,
      stats,
      opt,
      jax.random.PRNGKey(seed * 100003 + t + 10**6 * init_seed),
      jnp.asarray(draw()),
    )
    if t % args.eval_every == 0 or t == args.steps:
      sv = split_scores(params, stats, "val", val_pairs)
      v = verification.roc_auc(sv, val_pairs["label"])
      history.append((t, float(loss), float(acc), v))
      if v > best["val"]:
        best = {"val": v, "step": t, "params": params, "stats": stats, "sv": sv}
      if t % (4 * args.eval_every) == 0 or t == args.steps:
        log(
          f"    step {t} loss {float(loss):.3f} acc {float(acc):.2f} val {v:.4f} "
          f"[{time.perf_counter() - start:.0f}s]"
        )
  train_s = time.perf_counter() - start
  st = split_scores(best["params"], best["stats"], "test", test_pairs)
  test = verification.roc_auc(st, test_pairs["label"])
  log(
    f"  member {member} (init {init_seed}): val {best['val']:.4f} (step {best['step']}) "
    f"test {test:.4f} | train {train_s:.0f}s (+ pretrain {pre_s:.0f}s, shared by seeds)"
  )
  alt = {}
  if args.tta_alt:  # the same checkpoint scored with another TTA (a separate row)
    angles = tuple(args.tta_alt)
    alt = {
      "val_alt": split_scores(best["params"], best["stats"], "val", val_pairs, angles),
      "test_alt": split_scores(best["params"], best["stats"], "test", test_pairs, angles),
    }
  return {
    **alt,
    "val": best["sv"],
    "test": st,
    "val_auc": best["val"],
    "test_auc": test,
    "best_step": best["step"],
    "train_seconds": train_s,
    "pretrain_seconds": pre_s,
    "history": history,
  }


def z(s, ref):
  return (s - ref.mean()) / ref.std()


def fuse(lv, lt, cv, ct, yv, yt):
  """Learned + classical, each z-normalised on val; weight on the learned side chosen on val."""
  fv, ft = z(cv, cv), z(ct, cv)
  grid = np.round(np.linspace(0, 1, 21), 2)
  aucs = [verification.roc_auc(w * lv + (1 - w) * fv, yv) for w in grid]
  i = int(np.argmax(aucs))
  return float(grid[i]), aucs[i], verification.roc_auc(grid[i] * lt + (1 - grid[i]) * ft, yt)


def run(args, seed, images_raw, identities, log):
  _, records = splits.split_records(identities, counts=COUNTS, seed=seed)
  val_pairs = all_pairs(records["val"], identities)
  test_pairs = all_pairs(records["test"], identities)
  yv, yt = val_pairs["label"], test_pairs["label"]
  cl = classical(args, seed, images_raw, identities, records, val_pairs, test_pairs, log)
  res = {"seed": seed}
  for name in ("fingercode", "lbp", "fisherfaces"):
    res[f"{name}_val"] = verification.roc_auc(cl[f"{name}_val"], yv)
    res[f"{name}_test"] = verification.roc_auc(cl[f"{name}_test"], yt)
  log(
    f"seed {seed}: "
    + " | ".join(
      f"{n} val {res[n + '_val']:.4f} test {res[n + '_test']:.4f}"
      for n in ("fingercode", "lbp", "fisherfaces")
    )
  )
  imgs = preprocess(images_raw, args.size, args.prep)
  members = [
    train_member(args, seed, m, imgs, identities, records, val_pairs, test_pairs, log)
    for m in range(args.members)
  ]
  lv = np.mean([z(m["val"], m["val"]) for m in members], axis=0)
  lt = np.mean([z(m["test"], m["val"]) for m in members], axis=0)
  res.update(
    val_auc=verification.roc_auc(lv, yv),
    test_auc=verification.roc_auc(lt, yt),
    members=[
      {k: v for k, v in m.items() if k not in ("val", "test", "val_alt", "test_alt")}
      for m in members
    ],
    train_seconds=float(sum(m["train_seconds"] for m in members)),
  )
  if args.tta_alt:
    av = np.mean([z(m["val_alt"], m["val_alt"]) for m in members], axis=0)
    at = np.mean([z(m["test_alt"], m["val_alt"]) for m in members], axis=0)
    res["tta_alt"] = {"val": verification.roc_auc(av, yv), "test": verification.roc_auc(at, yt)}
    log(
      f"seed {seed}: TTA {args.tta_alt} val {res['tta_alt']['val']:.4f} test "
      f"{res['tta_alt']['test']:.4f}"
    )
  for name in ("fingercode", "fisherfaces"):
    w, fv, ft = fuse(lv, lt, cl[f"{name}_val"], cl[f"{name}_test"], yv, yt)
    res[f"fusion_{name}"] = {"w": w, "val": fv, "test": ft}
  if args.out:
    np.savez(
      args.out.replace(".json", "") + f"_scores_s{seed}.npz",
      val=lv,
      test=lt,
      val_label=yv,
      test_label=yt,
      **{f"m{i}_{k}": m[k] for i, m in enumerate(members) for k in ("val", "test")},
    )
  log(
    f"seed {seed}: learned ({args.members} members) val {res['val_auc']:.4f} "
    f"test {res['test_auc']:.4f} | FC test {res['fingercode_test']:.4f} FF test "
    f"{res['fisherfaces_test']:.4f} | fusion FC w={res['fusion_fingercode']['w']} "
    f"val {res['fusion_fingercode']['val']:.4f} test {res['fusion_fingercode']['test']:.4f}"
    f" | fusion FF w={res['fusion_fisherfaces']['w']} val "
    f"{res['fusion_fisherfaces']['val']:.4f} test {res['fusion_fisherfaces']['test']:.4f}"
    f" | train {res['train_seconds']:.0f}s"
  )
  return res


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--data", default="/work/shared/data/fvc2002_db_b")
  p.add_argument("--cache", default="/tmp/fvc_cache")
  p.add_argument("--seeds", default="0")
  p.add_argument("--members", type=int, default=1)
  p.add_argument("--size", type=int, default=128)
  p.add_argument("--prep", default="none", choices=("none", "hist", "clahe", "local"))
  p.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 64])
  p.add_argument("--stem", type=int, default=0, help="strided stem kernel (0 = none)")
  p.add_argument("--dim", type=int, default=128)
  p.add_argument("--head", default="avg")
  p.add_argument("--dropout", type=float, default=0.0)
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--batch", type=int, default=48)
  p.add_argument("--k", type=int, default=4)
  p.add_argument("--lr", type=float, default=2e-3)
  p.add_argument("--ft_lr", type=float, default=0.0, help="fine-tune lr after pretraining")
  p.add_argument("--wd", type=float, default=5e-4)
  p.add_argument("--cosface", type=float, default=1.0)
  p.add_argument("--s", type=float, default=16.0)
  p.add_argument("--m", type=float, default=0.2)
  p.add_argument("--triplet", type=float, default=0.0)
  p.add_argument("--tmargin", type=float, default=0.2)
  p.add_argument("--rot", type=float, default=20.0)
  p.add_argument("--scale", type=float, default=0.1)
  p.add_argument("--shift", type=float, default=0.1)
  p.add_argument("--elastic", type=float, default=0.0, help="elastic std, fraction of side")
  p.add_argument("--gamma", type=float, default=0.3)
  p.add_argument("--tta_rot", type=float, nargs="+", default=[0.0])
  p.add_argument("--tta_alt", type=float, nargs="*", default=[], help="also score these angles")
  p.add_argument("--eval_every", type=int, default=25)
  p.add_argument("--init_seed", type=int, default=0)
  p.add_argument("--pre_steps", type=int, default=0)
  p.add_argument("--pre_fingers", type=int, default=200)
  p.add_argument("--pre_difficulty", type=float, default=1.0)
  p.add_argument("--out", default="")
  args = p.parse_args()

  def log(s):
    print(s, flush=True)

  source = fvc2002_source(pathlib.Path(args.data), image_size=192)
  images = np.stack([source[i]["image"] for i in range(len(source))]).astype(np.float32)
  identities = np.asarray(source.identities)
  if args.out:
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
  log(f"args {vars(args)}")
  results = [run(args, int(s), images, identities, log) for s in args.seeds.split(",")]
  keys = ("val_auc", "test_auc", "fingercode_test", "fisherfaces_test", "lbp_test", "train_seconds")
  log("mean " + " ".join(f"{k} {np.mean([r[k] for r in results]):.4f}" for k in keys))
  if args.out:
    pathlib.Path(args.out).write_text(
      json.dumps({"args": vars(args), "results": results}, indent=1, default=float)
    )


if __name__ == "__main__":
  main()

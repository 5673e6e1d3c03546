r"""Training throughput of the Omniglot default's step (Conv-4, cosine softmax).

    python -m benchmarks.conv4_step [--batch=128] [--size=84] [--space-to-depth=3]
        [--steps=5] [--repeats=5] [--sides=jaxsim,flax,torch,torch_cl] [--threads=0]
        [--features=32,64,128,256] [--classes=2408] [--sampled=0]

The step: Conv-4 (3x3 conv - batch norm in training mode - ReLU - 2x2 max-pool, four
times, the last map flattened; by default the input, the folding and the widths of
`--config=omniglot`: 84x84 folded to 28x28x9 (space_to_depth 3; PyTorch's
`PixelUnshuffle`), 32-64-128-256, 2,304-d), a cosine softmax with an additive margin over
learnable proxies (CosFace s=16, m=0.1; by default one per class of `--config=omniglot`:
602 training characters x 4 quarter turns = 2,408), AdamW; one forward, backward and
update per step. Every side
runs the same network one after the other in this process; each figure is the
median of `--repeats` timings of `--steps` steps after two warm-up steps.

Sides:
- `jaxsim`: the model as `--config=omniglot` builds it (`conv_impl="im2col_train"`, and
  `jaxsim.models.conv.max_pool`, whose gradient avoids XLA's `select_and_scatter`);
- `flax`: the same Flax model with XLA's convolution and `flax.linen.max_pool` (the
  plain Flax Conv-4, what the task ran before);
- `torch`, `torch_cl`: PyTorch (NCHW, and channels-last memory format).

`--threads=N` caps PyTorch's threads and sets XLA's (0: all cores). XLA flags are
read from $XLA_FLAGS when JAX starts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics

import numpy as np

from benchmarks.train_step import configure_xla, time_steps

TRAINING_CHARACTERS = 602  # of the default split's 20 training alphabets


def _default_net() -> tuple[tuple[int, ...], int, int, int]:
  """Widths, class count, input size and space_to_depth of `--config=omniglot`'s model."""
  from experiments.configs import omniglot  # noqa: PLC0415

  c = omniglot.get_config()
  classes = TRAINING_CHARACTERS * int(c.data.rotation_classes) * (2 if c.data.mirror_classes else 1)
  enc = c.model.proxy.encoder
  return tuple(enc.features), classes, int(c.model.proxy.input_size), int(enc.space_to_depth)


def _data(batch, size, classes):
  rng = np.random.default_rng(0)
  images = (rng.uniform(size=(batch, size, size, 1)) < 0.2).astype(np.float32)
  return images, rng.integers(0, classes, batch).astype(np.int32)


@contextlib.contextmanager
def _flax_pooling():
  """jaxsim's modules look `max_pool` up at trace time: swap flax's in, then back."""
  import flax.linen as nn  # noqa: PLC0415

  from jaxsim.models import conv  # noqa: PLC0415

  saved = conv.max_pool, conv.max_pool_2x2
  conv.max_pool = nn.max_pool
  conv.max_pool_2x2 = lambda x: nn.max_pool(x, (2, 2), (2, 2))
  try:
    yield
  finally:
    conv.max_pool, conv.max_pool_2x2 = saved


def bench_jax(batch, size, steps, repeats, plain: bool, features, classes, s2d, sampled=0):
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  import optax  # noqa: PLC0415

  from jaxsim import losses, models  # noqa: PLC0415

  impl = "xla" if plain else "im2col_train"
  encoder = models.Conv4(features=features, flatten=True, conv_impl=impl, space_to_depth=s2d)
  images, labels = (jnp.asarray(a) for a in _data(batch, size, classes))
  variables = encoder.init(jax.random.key(0), images, train=True)
  dim = encoder.apply(variables, images).shape[1]
  params = {
    "encoder": variables["params"],
    "proxies": 0.01 * jax.random.normal(jax.random.key(1), (classes, dim)),
  }
  tx = optax.adamw(1e-3, weight_decay=5e-4)

  def loss_fn(params, stats):
    feats, updates = encoder.apply(
      {"params": params["encoder"], "batch_stats": stats},
      images,
      train=True,
      mutable=["batch_stats"],
    )
    loss, _ = losses.normalized_softmax_loss(
      feats, params["proxies"], labels, 16.0, 0.1, num_sampled=sampled
    )
    return loss, updates["batch_stats"]

  @jax.jit
  def step(params, stats, opt_state):
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), stats, opt_state, loss

  holder = [params, variables["batch_stats"], tx.init(params)]

  def run():
    *holder[:], loss = step(*holder)
    jax.block_until_ready(loss)

  with _flax_pooling() if plain else contextlib.nullcontext():
    return time_steps(run, steps, repeats)


def bench_torch(batch, size, steps, repeats, channels_last: bool, features, classes, s2d):
  import torch  # noqa: PLC0415
  from torch import nn  # noqa: PLC0415

  torch.manual_seed(0)
  layers, cin = ([nn.PixelUnshuffle(s2d)] if s2d > 1 else []), s2d * s2d
  for i, width in enumerate(features):
    layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    if i < len(features) - 1:
      layers.append(nn.MaxPool2d(2))
    cin = width
  net = nn.Sequential(*layers, nn.Flatten())
  dim = net(torch.zeros(2, 1, size, size)).shape[1]
  proxies = nn.Parameter(0.01 * torch.randn(classes, dim))
  opt = torch.optim.AdamW([*net.parameters(), proxies], lr=1e-3, weight_decay=5e-4)
  host_images, host_labels = _data(batch, size, classes)
  images = torch.from_numpy(host_images).permute(0, 3, 1, 2).contiguous()
  if channels_last:
    net = net.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
  labels = torch.from_numpy(host_labels).long()
  onehot = nn.functional.one_hot(labels, classes).float()

  def run():
    opt.zero_grad(set_to_none=True)
    e = nn.functional.normalize(net(images), dim=-1)
    cos = e @ nn.functional.normalize(proxies, dim=-1).T
    loss = nn.functional.cross_entropy(16.0 * (cos - 0.1 * onehot), labels)
    loss.backward()
    opt.step()

  return time_steps(run, steps, repeats)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--size", type=int, default=0, help="input side (default: the config's)")
  parser.add_argument("--space-to-depth", type=int, default=0, help="default: the config's")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--sides", default="jaxsim,flax,torch,torch_cl")
  parser.add_argument("--threads", type=int, default=0)
  parser.add_argument("--features", default="", help="widths, e.g. 64,64,64,64")
  parser.add_argument("--classes", type=int, default=0, help="proxies (default: the config's)")
  parser.add_argument(
    "--sampled", type=int, default=0, help="jaxsim sides: proxies per step (0: all; Partial FC)"
  )
  args = parser.parse_args()
  configure_xla()
  features, classes, size, s2d = _default_net()
  if args.features:
    features = tuple(int(w) for w in args.features.split(","))
  classes, args.size, s2d = args.classes or classes, args.size or size, args.space_to_depth or s2d
  sampled = f", jaxsim sides {args.sampled} sampled per step" if args.sampled else ""
  folded = f", space_to_depth {s2d}" if s2d > 1 else ""
  print(f"Conv-4 {'-'.join(map(str, features))}, {classes} proxies{folded}{sampled}", flush=True)
  net = (features, classes, s2d)
  sides = args.sides.split(",")
  if args.threads:
    os.environ["XLA_FLAGS"] = (
      os.environ.get("XLA_FLAGS", "")
      + f" --xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'}"
      + f" intra_op_parallelism_threads={args.threads}"
    )
  if any(s.startswith("torch") for s in sides):
    import torch  # noqa: PLC0415

    torch.set_flush_denormal(True)
    if args.threads:
      torch.set_num_threads(args.threads)
  benches = {
    "jaxsim": lambda: bench_jax(
      args.batch, args.size, args.steps, args.repeats, False, *net, args.sampled
    ),
    "flax": lambda: bench_jax(
      args.batch, args.size, args.steps, args.repeats, True, *net, args.sampled
    ),
    "torch": lambda: bench_torch(args.batch, args.size, args.steps, args.repeats, False, *net),
    "torch_cl": lambda: bench_torch(args.batch, args.size, args.steps, args.repeats, True, *net),
  }
  rate = {}
  for side in sides:
    times = benches[side]()
    rate[side] = args.batch / statistics.median(times)
    spread = [round(args.batch / t) for t in times]
    print(
      f"{side:8s} {args.size}x{args.size} batch {args.batch}: {rate[side]:.0f} images/s "
      f"(median; each repeat {spread})",
      flush=True,
    )
  for ref in ("torch", "torch_cl"):
    for side in ("jaxsim", "flax"):
      if side in rate and ref in rate:
        print(f"ratio {side}/{ref}: {rate[side] / rate[ref]:.2f}", flush=True)


if __name__ == "__main__":
  main()

r"""Training throughput of the face_fp two-tower ResNet-18 step: jaxsim vs PyTorch (CPU).

    python -m benchmarks.train_step [--resolutions=128,64] [--batch=64] [--steps=3] [--repeats=5]
        [--frameworks=jax,jax_xla,torch] [--dtype=float32|bfloat16]

The step: two separate ResNet-18 towers (face RGB, fingerprint grayscale),
256-d L2-normalised embeddings, the seed's pair contrastive loss on the
Euclidean distance (margin 2.0), Adam 1e-4; one forward, backward and update
per step, batch 64 pairs. Both frameworks run the same architecture
(torchvision-style ResNet-18, ImageNet stem, batch norm in training mode)
in this process, interleaved: after two warm-up steps each, every round times
`--steps` steps of each framework in turn (after one untimed step), and each rate
is the median over `--repeats` rounds. The ratio printed is the median of the
rounds' ratios, each taken within one round, so that a change in the machine's
speed between rounds (which moved PyTorch's own rate by up to a third between
invocations on the 2-core EPYC) cancels; the ratio of the two medians
follows it. The machine's other load still shows up as noise: repeat the invocation.
XLA flags are read from $XLA_FLAGS when JAX starts (set them on the command line).
Like `experiments.run`, it first takes convolutions out of YNNPACK
(`jaxsim.xla_cpu.prefer_eigen_convolutions`); `JAXSIM_YNN_CONVOLUTIONS=1` keeps jaxlib's
default for comparison (README, Performance: at 128x128 the ratio was 0.64-0.71 with
YNNPACK's convolutions and 0.99-1.01 without, alternating invocations).
The allocator matters at these sizes: `GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python -m
benchmarks.train_step` gives both frameworks transparent huge pages for buffers above
32 MB (README, Performance: jaxsim's ratio at 64x64 went from 0.78 to 0.99).

`jax` is jaxsim's ResNet as the tasks use it (`conv_impl="auto"`: im2col where an
output side is smaller than the kernel, elsewhere XLA's convolution with the weight
gradient's input stored per sample on large maps, see `jaxsim.models.conv`); `jax_xla`
is the same model with XLA's plain convolution everywhere, the Flax ResNet. The per-layer
breakdown is `python -m benchmarks.conv_layers`.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

import numpy as np

from jaxsim import report, xla_cpu


def configure_xla() -> None:
  """As `experiments.run` does: XLA's own convolutions instead of YNNPACK's
  (`jaxsim.xla_cpu`; JAXSIM_YNN_CONVOLUTIONS=1 keeps jaxlib's default, for an A/B).
  Call before JAX starts; prints the flags in effect."""
  xla_cpu.prefer_eigen_convolutions()
  print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)


def _batch(rng, batch, size):
  return {
    "image_a": rng.uniform(size=(batch, size, size, 3)).astype(np.float32),
    "image_b": rng.uniform(size=(batch, size, size, 1)).astype(np.float32),
    "label": (rng.uniform(size=batch) < 0.5).astype(np.int32),
  }


def time_steps(step_fn, steps, repeats):
  step_fn()  # compile / allocate
  step_fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
      step_fn()
    times.append((time.perf_counter() - t0) / steps)
  return times


def make_jax_step(batch, size, dtype, conv_impl="auto"):
  """jaxsim's two-tower step on one fixed batch, as a no-argument function that waits
  for the step's loss."""
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415

  from jaxsim import distances, losses, models, parallel, train  # noqa: PLC0415

  compute = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
  model = models.TwoTowerModel(
    models.ResNetEncoder(depth=18, dim=256, dtype=compute, conv_impl=conv_impl),
    models.ResNetEncoder(depth=18, dim=256, dtype=compute, conv_impl=conv_impl),
  )

  def loss_fn(outputs, b):
    d = distances.euclidean_distance(outputs["embeddings_a"], outputs["embeddings_b"])
    return jnp.mean(losses.contrastive_loss(d, b["label"], margin=2.0)), {}

  cfg = train.default_config()
  cfg.update(learning_rate=1e-4, schedule="constant", batch_size=batch)
  tx, _ = train.make_optimizer(cfg)
  mesh = parallel.data_mesh(jax.devices()[:1])
  host = _batch(np.random.default_rng(0), batch, size)
  state = train.create_train_state(model, tx, host, train.PAIR_INPUTS, 0, mesh)
  step = train.make_train_step(model, loss_fn, tx, mesh, train.PAIR_INPUTS)
  device_batch = parallel.shard_batch(host, mesh)
  holder = {"state": state}

  def run():
    holder["state"], metrics = step(holder["state"], device_batch)
    jax.block_until_ready(metrics["loss"])

  return run


def make_torch_step(batch, size, dtype):
  """The same step in PyTorch (eager, NCHW), as a no-argument function."""
  import torch  # noqa: PLC0415
  from torch import nn  # noqa: PLC0415

  class Block(nn.Module):
    def __init__(self, cin, cout, stride):
      super().__init__()
      self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.b1 = nn.BatchNorm2d(cout)
      self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.b2 = nn.BatchNorm2d(cout)
      self.proj = None
      if stride != 1 or cin != cout:
        self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
      y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
      return torch.relu(y + (x if self.proj is None else self.proj(x)))

  class Encoder(nn.Module):
    def __init__(self, cin):
      super().__init__()
      layers = [
        nn.Conv2d(cin, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
      ]
      c = 64
      for i, width in enumerate((64, 128, 256, 512)):
        for j in range(2):
          layers.append(Block(c, width, 2 if i > 0 and j == 0 else 1))
          c = width
      self.trunk = nn.Sequential(*layers)
      self.head = nn.Linear(512, 256)

    def forward(self, x):
      return nn.functional.normalize(self.head(self.trunk(x).mean((2, 3))), dim=-1)

  torch.manual_seed(0)
  tower_a, tower_b = Encoder(3), Encoder(1)
  params = list(tower_a.parameters()) + list(tower_b.parameters())
  opt = torch.optim.Adam(params, lr=1e-4)
  host = _batch(np.random.default_rng(0), batch, size)
  a = torch.from_numpy(host["image_a"]).permute(0, 3, 1, 2).contiguous()
  b = torch.from_numpy(host["image_b"]).permute(0, 3, 1, 2).contiguous()
  label = torch.from_numpy(host["label"]).float()
  autocast = dtype == "bfloat16"

  def run():
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
      ea, eb = tower_a(a), tower_b(b)
    d = torch.sqrt(torch.clamp(((ea.float() - eb.float()) ** 2).sum(-1), min=1e-12))
    loss = (label * d**2 + (1 - label) * torch.clamp(2.0 - d, min=0) ** 2).mean()
    loss.backward()
    opt.step()

  return run


def time_interleaved(step_fns: dict, steps: int, repeats: int) -> dict:
  """Seconds per step of each function, `repeats` rounds; each round times `steps`
  steps of every function in turn, so all of them see the same phase of the machine.

  Each function's turn starts with one untimed step: the first jaxsim step after
  PyTorch's ran at about 75% of the rate of the steps after it at 128 px (2026-12-04),
  a cost that a training loop, which never switches, does not pay.
  """
  for fn in step_fns.values():
    fn()  # compile / allocate
    fn()
  times = {name: [] for name in step_fns}
  for _ in range(repeats):
    for name, fn in step_fns.items():
      fn()  # untimed: the first step after another framework ran pays to re-fault memory
      t0 = time.perf_counter()
      for _ in range(steps):
        fn()
      times[name].append((time.perf_counter() - t0) / steps)
  return times


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--resolutions", default="128,64")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--frameworks", default="jax,jax_xla,torch")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument(
    "--torch_flush_denormal",
    type=int,
    default=1,
    help="torch.set_flush_denormal (XLA's CPU code already flushes denormals to zero)",
  )
  args = parser.parse_args()
  configure_xla()
  torch_isa = ""
  if "torch" in args.frameworks:
    import torch  # noqa: PLC0415

    torch.set_flush_denormal(bool(args.torch_flush_denormal))
    torch_isa = f"; PyTorch {torch.__version__} kernels: {torch.backends.cpu.get_cpu_capability()}"
  print(f"machine: {report.machine_summary()}{torch_isa}", flush=True)
  frameworks = args.frameworks.split(",")
  makers = {
    "jax": make_jax_step,
    "jax_xla": functools.partial(make_jax_step, conv_impl="xla"),
    "torch": make_torch_step,
  }
  for size in (int(s) for s in args.resolutions.split(",")):
    fns = {name: makers[name](args.batch, size, args.dtype) for name in frameworks}
    times = time_interleaved(fns, args.steps, args.repeats)
    rate = {name: args.batch / statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
      spread = [round(args.batch / x, 1) for x in t]
      print(
        f"{name:7s} {size}x{size} batch {args.batch} {args.dtype}: "
        f"{rate[name]:.1f} pairs/s = {2 * rate[name]:.1f} images/s "
        f"(median; pairs/s of each round {spread})",
        flush=True,
      )
    for name in ("jax", "jax_xla"):
      if name in times and "torch" in times:
        # Each round's ratio compares the two under the same phase of the machine.
        rounds = [t / j for j, t in zip(times[name], times["torch"], strict=True)]
        print(
          f"ratio {name}/pytorch at {size}x{size}: {statistics.median(rounds):.2f} "
          f"(median of the rounds' ratios {[round(r, 2) for r in rounds]}; "
          f"ratio of the medians {rate[name] / rate['torch']:.2f})",
          flush=True,
        )
    del fns


if __name__ == "__main__":
  main()

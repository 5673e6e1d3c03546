"""A small Flax CNN embedder and a PxK batch-all triplet train step, for the data benchmarks only.

jaxsim.models is not on the data branch; this stands in for "a quick unimodal
model" (4 strided conv blocks, global average pooling, 64-d L2-normalised output).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsim import losses


class SmallCNN(nn.Module):
  widths: tuple[int, ...] = (32, 64, 128, 256)
  embedding_dim: int = 64

  @nn.compact
  def __call__(self, x):
    for w in self.widths:
      x = nn.Conv(w, (3, 3))(x)
      x = nn.relu(nn.LayerNorm()(x))
      x = nn.Conv(w, (3, 3), strides=(2, 2))(x)
      x = nn.relu(x)
    x = x.mean(axis=(1, 2))
    x = nn.Dense(self.embedding_dim)(x)
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True).clip(1e-6)


def init(model, image_shape, seed=0, learning_rate=1e-3):
  params = model.init(jax.random.key(seed), jnp.zeros((1, *image_shape)))
  tx = optax.adam(learning_rate)
  return {"params": params, "opt_state": tx.init(params)}, tx


def make_train_step(model, tx):
  @functools.partial(jax.jit, donate_argnums=0)
  def train_step(state, images, labels):
    def loss_fn(params):
      emb = model.apply(params, images)
      loss, _ = losses.batch_all_triplet_loss(emb, labels, margin=0.2)
      return loss

    loss, grads = jax.value_and_grad(loss_fn)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    return {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state}, loss

  return train_step


def embed(model, params, images: np.ndarray, batch_size=256) -> np.ndarray:
  apply = jax.jit(model.apply)
  return np.concatenate(
    [
      np.asarray(apply(params, images[i : i + batch_size]))
      for i in range(0, len(images), batch_size)
    ]
  )

"""jaxsim: Siamese networks and metric learning in JAX/Flax."""

__version__ = "0.1.0"

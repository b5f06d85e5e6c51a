"""adaptlab: adapt big pretrained encoders cheaply, and learn from very rare events — honestly measured."""

__version__ = "0.1.0"

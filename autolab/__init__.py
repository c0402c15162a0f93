"""autolab: a local lab for small language models with an autonomous research loop."""

__version__ = "0.1.0"

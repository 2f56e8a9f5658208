"""runner: a batch-job runner for GPU clusters."""

__version__ = "0.1.0"

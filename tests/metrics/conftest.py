"""The dashboard tests' stand-in training job serves `runner metrics` too."""

from tests.ui.conftest import finished_training, start_training

__all__ = ["finished_training", "start_training"]

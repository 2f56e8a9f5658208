"""Tests of the example TensorFlow/Keras jobs in jobs/ (and helpers to check what they save)."""

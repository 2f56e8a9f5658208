"""MNIST: the TensorFlow beginner warm-up (a small dense network on 28x28 digits)."""

"""A fake Kubernetes API server on loopback for the tests, driven by the real client and real kubectl."""

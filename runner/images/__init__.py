"""Job images: build contexts (shared with the process backend's per-run copies); builds come later."""

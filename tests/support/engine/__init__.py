"""Test infrastructure for the container tests: the Docker engine, the local registry and base images.

Nothing here is imported by `runner`; it is test code shared by the suites that need real containers.
`tests.support.engine.fixtures` is the pytest plugin that exposes it as fixtures.
"""

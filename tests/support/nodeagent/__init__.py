"""A node agent for a real control plane without kubelets (scripts/cluster.sh): GPU Nodes whose pods run
as Docker containers, or for a simulated duration in scale mode. See agent.py; `python -m
tests.support.nodeagent --help` runs one on its own."""

from tests.support.nodeagent.agent import NodeAgent
from tests.support.nodeagent.nodes import NodeSpec

__all__ = ["NodeAgent", "NodeSpec"]

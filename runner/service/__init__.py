"""Submit, status, logs, cancel and artifacts over a Backend, with run records and the store."""

from runner.service.outcomes import exit_code_of
from runner.service.runs import RunService

__all__ = ["RunService", "exit_code_of"]

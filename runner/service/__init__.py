"""Submit, status, logs, cancel and artifacts over a Backend, with run records and the store."""

from runner.service.runs import RunService, exit_code_of

__all__ = ["RunService", "exit_code_of"]

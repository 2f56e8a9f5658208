"""The in-container agent: runs a job's command, tees its logs and collects the run on every exit.

It imports only the standard library, runner.store, runner.errors and runner.config, so it starts
fast in any image and never needs pydantic or PyYAML.
"""

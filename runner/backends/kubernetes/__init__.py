"""The cluster family: runs as Kubernetes Jobs, schedules as CronJobs, through the official client.

backend.py and cronjobs.py do the I/O; pure/ holds the decisions they take from what the API server
returns (run states, pending reasons, schedule views), free of I/O under an import-linter contract.
"""

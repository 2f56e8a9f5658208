"""The local family: runs on this machine, as processes or Docker containers.

Each local run is owned by a detached supervisor (supervisor.py) that drives its attempts
(attempts.py: the attempt loop, retries on policy.py's decisions, collection into the store), holds
the GPUs it claimed (gpus.py) and outlives the command that started it. supervised.py is the base
both local backends share; process.py and docker.py differ only in how one attempt starts.
"""

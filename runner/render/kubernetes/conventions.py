"""The names, numbers and limits of a run's Kubernetes objects (docs/architecture.md's "Kubernetes
conventions"), shared by the renderers (objects.py, pod.py) and the checks (checks.py, target.py)."""

from __future__ import annotations

# Labels and annotations besides the run's own (runner.spec.labels).
NAME_LABEL = "app.kubernetes.io/name"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANIFEST_SHA256 = "runner.dev/manifest-sha256"
INPUTS_ANNOTATION = "runner.dev/inputs"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
APP_NAME = "runner-job"

# The pod. UID and WORKDIR are the job image's (runner.images.recipe; a test keeps them equal).
CONTAINER = "job"
UID = 1000
WORKDIR = "/job"
# The agent's own Python environment in the job image (runner.images.recipe.AGENT_VENV), with boto3,
# apart from the job's packages; isolated mode (-I): the working directory is the job's context, whose
# runner.py or runner/ must not shadow the installed agent. The same as the job image's ENTRYPOINT (a
# test keeps them equal).
AGENT = ("/opt/runner/bin/python", "-I", "-m", "runner.agent", "--")
MANIFEST_DIR = "/etc/runner"
MANIFEST_FILE = "job.yaml"
MANIFEST_PATH = f"{MANIFEST_DIR}/{MANIFEST_FILE}"
TMP = "/tmp"
BACKEND = "kubernetes"

# GPUs: the NVIDIA device plugin's resource, GPU feature discovery's product label, and the taint
# GPU node pools carry.
GPU_RESOURCE = "nvidia.com/gpu"

# What the job controller labels each pod of a Job with (Kubernetes 1.27 and later): the Job's name,
# which is the run id of a schedule's run.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# What the job controller annotates each pod of an Indexed Job (a multi-worker run) with: its index,
# the worker's.
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
# A CronJob's Jobs are named "<cronjob>-<scheduled unix minutes>": the API caps CronJob names at 52.
MAX_CRONJOB_NAME = 52
# How many finished Jobs (with their pods, for kubectl logs and describe) a CronJob keeps, each kind.
# The store keeps every run's logs and outputs; this is only what an operator sees with kubectl.
# Three failures, not Kubernetes' default of one: a nightly job that fails several nights running is
# debugged by comparing them. ttlSecondsAfterFinished removes them after TTL_SECONDS anyway.
SUCCESSFUL_JOBS_HISTORY = 3
FAILED_JOBS_HISTORY = 3
# The length of the manifest digest in a schedule's ConfigMap name: <schedule>-<digest>, at most 63.
CONFIG_MAP_DIGEST = 10

# Lifetimes.
TTL_SECONDS = 3 * 86400  # a finished Job (and its pods, their logs) is kept 3 days for kubectl
DEFAULT_GRACE = 10.0  # RUNNER_GRACE: SIGTERM to SIGKILL of the command, inside the agent
UPLOAD_SECONDS = 50  # after the command is gone, the agent's time to collect into the store
MAX_GRACE = 3600.0
MAX_CONFIG_MAP_BYTES = 1024 * 1024 - 1024  # the API's limit on a ConfigMap's data, less its key
MAX_ANNOTATIONS_BYTES = 256 * 1024  # the API's limit on one object's annotations, keys included
# Exit codes that another attempt of the same image cannot change: the agent's "command not found"
# (127) and "found but cannot be executed" (126). Everything else is retried up to backoffLimit.
UNRETRYABLE_EXIT_CODES = (126, 127)

# The store's credentials, each from the key of the same name in the Secret named by store_secret
# (boto3's variables). Optional keys may be absent from the Secret.
STORE_SECRET_KEYS: tuple[tuple[str, bool], ...] = (
    ("AWS_ACCESS_KEY_ID", False),
    ("AWS_SECRET_ACCESS_KEY", False),
    ("AWS_SESSION_TOKEN", True),
    ("AWS_ENDPOINT_URL", True),
    ("AWS_DEFAULT_REGION", True),
)
# Variables that hold a secret: never as a literal value in a Job, which anyone who may read Jobs reads.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
CLUSTER_STORE_SCHEMES = ("s3",)

# A mount at or above one of these would hide what the container needs to start, or collide with
# the runner's own mounts; anything inside /proc or /sys cannot be a mount point.
PROTECTED_PATHS = (
    "/bin",
    "/dev",
    "/lib",
    "/lib64",
    "/sbin",
    "/usr/bin",
    "/usr/lib",
    "/usr/local/bin",
    "/usr/local/lib",
    "/var/run",
    MANIFEST_DIR,
    WORKDIR,
)
NO_MOUNTS_INSIDE = ("/proc", "/sys", MANIFEST_DIR)

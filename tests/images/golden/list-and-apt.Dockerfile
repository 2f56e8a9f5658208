# Job image rendered by runner from its template images/job.Dockerfile; do not edit.
FROM nvcr.io/nvidia/tensorflow:24.03-tf2-py3

# Build-time only (ARG values reach RUN as variables and are not kept in the image).
ARG DEBIAN_FRONTEND=noninteractive
ARG PIP_NO_CACHE_DIR=1
ARG PIP_DISABLE_PIP_VERSION_CHECK=1
ARG PIP_ROOT_USER_ACTION=ignore
ARG PIP_BREAK_SYSTEM_PACKAGES=1

# The base image may end as another user; setting up needs root.
USER root

# System packages from spec.image.apt; the package lists are not kept.
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        curl \
        git \
        libgl1 \
    ; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*

# "python" for the entrypoint (some bases have only python3); the numeric non-root user, created
# when the base has none with that id; its home, the job's directory and the outputs directory.
RUN set -eu; \
    command -v python >/dev/null 2>&1 || ln -s "$(command -v python3)" /usr/local/bin/python; \
    getent group 1000 >/dev/null || groupadd --gid 1000 runner; \
    getent passwd 1000 >/dev/null || \
        useradd --uid 1000 --gid 1000 --home-dir /home/runner --create-home --shell /bin/sh runner; \
    home="$(getent passwd 1000 | cut -d: -f6)"; \
    [ -d "$home" ] || { mkdir -p "$home"; chown 1000:1000 "$home"; }; \
    mkdir -p /job '/results/run one'; \
    chown 1000:1000 /job '/results/run one'

# The runner's agent in a virtual environment of its own, /opt/runner, apart from the job's
# packages; its packages from wheels resolved on the host, installed by pip's own wheel (kept
# for the runner's wheel below), so this needs neither the network nor pip in the base.
COPY .runner/agent/ /tmp/runner-build/agent/
RUN set -eu; \
    python -m venv --without-pip /opt/runner; \
    cp /tmp/runner-build/agent/pip-*.whl /opt/runner/pip.whl; \
    /opt/runner/bin/python /opt/runner/pip.whl/pip install --no-index --find-links /tmp/runner-build/agent \
        --disable-pip-version-check --no-cache-dir 'boto3>=1.36'; \
    rm -rf /tmp/runner-build

# The job's Python requirements (spec.image.requirements), before its code for the layer cache;
# offline, from wheels resolved on the host (pip download).
COPY .runner/wheelhouse/ /tmp/runner-build/wheelhouse/
COPY .runner/requirements.txt /tmp/runner-build/requirements.txt
RUN python -m pip install --no-index --find-links /tmp/runner-build/wheelhouse \
        -r /tmp/runner-build/requirements.txt \
    && rm -rf /tmp/runner-build

# The runner itself, offline and without dependencies, in /opt/runner/runner-lib: the agent runs
# it from its environment; the job's Python sees the runner package alone (runner.metrics for its
# training callbacks), never the agent's dependencies. A .pth file in each puts it on sys.path.
COPY .runner/runner-0.1.0-py3-none-any.whl /tmp/runner-build/
RUN set -eu; \
    /opt/runner/bin/python /opt/runner/pip.whl/pip install --no-deps --no-index \
        --disable-pip-version-check --no-cache-dir --target /opt/runner/runner-lib \
        /tmp/runner-build/runner-0.1.0-py3-none-any.whl; \
    for python in /opt/runner/bin/python python; do \
        site="$("$python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
        mkdir -p "$site"; \
        echo /opt/runner/runner-lib > "$site/runner.pth"; \
    done; \
    rm -rf /tmp/runner-build

# The job's files last, so that editing code reuses every layer above.
COPY --chown=1000:1000 job/ /job/

ENV PYTHONUNBUFFERED=1
WORKDIR /job
USER 1000:1000
# The agent from its own environment, in isolated mode (-I): the working directory is the job's
# context, and a runner.py or runner/ there must not shadow the installed agent (nor PYTHONPATH, nor
# the user's site-packages). The job's command runs with the container's environment as given (its
# PATH, so `python` is the base's, PYTHONPATH included).
ENTRYPOINT ["/opt/runner/bin/python", "-I", "-m", "runner.agent", "--"]
CMD ["bash", "-c", "echo \"$HOME\" && python train.py"]

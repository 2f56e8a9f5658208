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

# Packages come from the package index (the context has no wheelhouse/).

# The job's Python requirements (spec.image.requirements), before its code for the layer cache.
COPY .runner/requirements.txt /tmp/runner-build/requirements.txt
RUN python -m pip install -r /tmp/runner-build/requirements.txt

# The agent needs nothing beyond the standard library.

# The runner itself, for its agent: without dependencies, never from an index.
COPY .runner/runner-0.1.0-py3-none-any.whl /tmp/runner-build/
RUN python -m pip install --no-deps --no-index /tmp/runner-build/runner-0.1.0-py3-none-any.whl \
    && rm -rf /tmp/runner-build

# The job's files last, so that editing code reuses every layer above.
COPY --chown=1000:1000 job/ /job/

ENV PYTHONUNBUFFERED=1
WORKDIR /job
USER 1000:1000
# The agent in isolated mode (-I): the working directory is the job's context, and a runner.py or
# runner/ there must not shadow the installed agent (nor PYTHONPATH, nor the user's site-packages).
# The job's command runs with the container's environment as given, PYTHONPATH included.
ENTRYPOINT ["python", "-I", "-m", "runner.agent", "--"]
CMD ["bash", "-c", "echo \"$HOME\" && python train.py"]

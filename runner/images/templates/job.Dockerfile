## The image of one runner job. Canonical copy: runner/images/templates/job.Dockerfile (package data);
## images/job.Dockerfile at the top of the repository is a symbolic link to it.
##
## Rendered by runner.images.recipe.render_dockerfile. Lines starting with "##" are notes about the
## template and are dropped; every {{ name }} is replaced verbatim, and rendering fails on a name it
## does not know or a value it was not given. No other syntax: "$" is left alone for the shell.
##
##   base          spec.image.base, a checked image reference (tensorflow/tensorflow:2.21.0-gpu)
##   apt           a RUN installing spec.image.apt, or a comment when the list is empty
##   wheelhouse    air-gapped mode: COPY of the context's wheelhouse/; otherwise a comment
##   requirements  COPY and RUN installing the job's requirements, or a comment when it has none
##   runner_wheel  the runner's wheel inside the build context: .runner/runner-<version>-py3-none-any.whl
##   runner_wheel_name  its file name
##   agent         a RUN installing the few packages the agent needs (none today), or a comment
##   uid           the numeric user and group the job runs as (1000)
##   workdir       where the job's context is copied and where it runs (/job)
##   outputs       spec.outputs.path, made writable by uid (/outputs)
##   command       spec.command as a JSON array
##
## The build context is laid out by BuildRecipe.entries(): Dockerfile, .runner/ (runner wheel,
## requirements.txt, wheelhouse/) and job/ (the job's files). See images/README.md.
# Job image rendered by runner from its template images/job.Dockerfile; do not edit.
FROM {{ base }}

# Build-time only (ARG values reach RUN as variables and are not kept in the image).
ARG DEBIAN_FRONTEND=noninteractive
ARG PIP_NO_CACHE_DIR=1
ARG PIP_DISABLE_PIP_VERSION_CHECK=1
ARG PIP_ROOT_USER_ACTION=ignore
ARG PIP_BREAK_SYSTEM_PACKAGES=1

# The base image may end as another user; setting up needs root.
USER root

{{ apt }}

# "python" for the entrypoint (some bases have only python3); the numeric non-root user, created
# when the base has none with that id; its home, the job's directory and the outputs directory.
RUN set -eu; \
    command -v python >/dev/null 2>&1 || ln -s "$(command -v python3)" /usr/local/bin/python; \
    getent group {{ uid }} >/dev/null || groupadd --gid {{ uid }} runner; \
    getent passwd {{ uid }} >/dev/null || \
        useradd --uid {{ uid }} --gid {{ uid }} --home-dir /home/runner --create-home --shell /bin/sh runner; \
    home="$(getent passwd {{ uid }} | cut -d: -f6)"; \
    [ -d "$home" ] || { mkdir -p "$home"; chown {{ uid }}:{{ uid }} "$home"; }; \
    mkdir -p {{ workdir }} {{ outputs }}; \
    chown {{ uid }}:{{ uid }} {{ workdir }} {{ outputs }}

{{ wheelhouse }}

{{ requirements }}

{{ agent }}

# The runner itself, for its agent: without dependencies, never from an index.
COPY {{ runner_wheel }} /tmp/runner-build/
RUN python -m pip install --no-deps --no-index /tmp/runner-build/{{ runner_wheel_name }} \
    && rm -rf /tmp/runner-build

# The job's files last, so that editing code reuses every layer above.
COPY --chown={{ uid }}:{{ uid }} job/ {{ workdir }}/

ENV PYTHONUNBUFFERED=1
WORKDIR {{ workdir }}
USER {{ uid }}:{{ uid }}
# The agent in isolated mode (-I): the working directory is the job's context, and a runner.py or
# runner/ there must not shadow the installed agent (nor PYTHONPATH, nor the user's site-packages).
# The job's command runs with the container's environment as given, PYTHONPATH included.
ENTRYPOINT ["python", "-I", "-m", "runner.agent", "--"]
CMD {{ command }}

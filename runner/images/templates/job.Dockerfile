## The image of one runner job. Canonical copy: runner/images/templates/job.Dockerfile (package data);
## images/job.Dockerfile at the top of the repository is a symbolic link to it.
##
## Rendered by runner.images.recipe.render_dockerfile. Lines starting with "##" are notes about the
## template and are dropped; every {{ name }} is replaced verbatim, and rendering fails on a name it
## does not know or a value it was not given. No other syntax: "$" is left alone for the shell.
##
##   base          spec.image.base, a checked image reference (tensorflow/tensorflow:2.21.0-gpu)
##   apt           a RUN installing spec.image.apt, or a comment when the list is empty
##   agent         COPY of the agent's wheels and a RUN making its virtual environment, {{ agent_venv }}
##   requirements  COPY of the job's wheels and requirements and a RUN installing them offline, or a
##                 comment when it has none
##   runner_wheel  the runner's wheel inside the build context: .runner/runner-<version>-py3-none-any.whl
##   runner_wheel_name  its file name
##   agent_venv    the agent's virtual environment (/opt/runner)
##   uid           the numeric user and group the job runs as (1000)
##   workdir       where the job's context is copied and where it runs (/job)
##   outputs       spec.outputs.path, made writable by uid (/outputs)
##   command       spec.command as a JSON array
##
## The build context is laid out by BuildRecipe.entries() and the build step: Dockerfile, .runner/
## (runner wheel, agent/ wheels, requirements.txt, wheelhouse/) and job/ (the job's files). Every
## pip install is offline (--no-index): the wheels were resolved on the host. See images/README.md.
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

{{ agent }}

{{ requirements }}

# The runner itself, offline and without dependencies, in {{ agent_venv }}/runner-lib: the agent runs
# it from its environment; the job's Python sees the runner package alone (runner.metrics for its
# training callbacks), never the agent's dependencies. A .pth file in each puts it on sys.path.
COPY {{ runner_wheel }} /tmp/runner-build/
RUN set -eu; \
    {{ agent_venv }}/bin/python {{ agent_venv }}/pip.whl/pip install --no-deps --no-index \
        --disable-pip-version-check --no-cache-dir --target {{ agent_venv }}/runner-lib \
        /tmp/runner-build/{{ runner_wheel_name }}; \
    for python in {{ agent_venv }}/bin/python python; do \
        site="$("$python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
        mkdir -p "$site"; \
        echo {{ agent_venv }}/runner-lib > "$site/runner.pth"; \
    done; \
    rm -rf /tmp/runner-build

# The job's files last, so that editing code reuses every layer above.
COPY --chown={{ uid }}:{{ uid }} job/ {{ workdir }}/

ENV PYTHONUNBUFFERED=1
WORKDIR {{ workdir }}
USER {{ uid }}:{{ uid }}
# The agent from its own environment, in isolated mode (-I): the working directory is the job's
# context, and a runner.py or runner/ there must not shadow the installed agent (nor PYTHONPATH, nor
# the user's site-packages). The job's command runs with the container's environment as given (its
# PATH, so `python` is the base's, PYTHONPATH included).
ENTRYPOINT ["{{ agent_venv }}/bin/python", "-I", "-m", "runner.agent", "--"]
CMD {{ command }}

"""`runner init` (a new job that validates and runs as generated) and `runner completion` (shell
completion scripts, from click's own machinery)."""

from __future__ import annotations

import re
from pathlib import Path

import click

SHELLS = ("bash", "zsh", "fish")


def _job_name(directory: Path) -> str:
    """A DNS-1123 label from the directory's name: lowercase, '-' for anything else."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")[:52].strip("-")
    return name or "my-job"


@click.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--name", help="The job's name (default: from the directory's name).")
@click.option("--force", is_flag=True, help="Overwrite files that are already there.")
def init(directory: Path, name: str | None, force: bool) -> None:
    """Start a job in DIRECTORY (default: here): a commented job.yaml, a Keras train.py that writes its
    model and metrics to $RUNNER_OUTPUTS, requirements.txt and .dockerignore.

    \b
    Then:  runner validate DIRECTORY/job.yaml
           runner submit DIRECTORY/job.yaml
    """
    from runner.cli.scaffold import files
    from runner.errors import UserError
    from runner.spec.names import check_dns_label

    job = name or _job_name(directory)
    try:
        check_dns_label(job, "name", 52)
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--name") from None
    wanted = files(job)
    present = [file for file in wanted if (directory / file).exists()]
    if present and not force:
        raise UserError(
            f"{directory} already has {', '.join(present)}: nothing was written",
            hint="choose another directory, or --force to overwrite them",
        )
    directory.mkdir(parents=True, exist_ok=True)
    for file, text in wanted.items():
        (directory / file).write_text(text)
        click.echo(f"wrote {directory / file}", err=True)
    job_file = directory / "job.yaml"
    click.echo(f"job {job}: next, runner validate {job_file} && runner submit {job_file}", err=True)


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  echo 'eval "$(runner completion bash)"' >> ~/.bashrc
    zsh:   echo 'eval "$(runner completion zsh)"' >> ~/.zshrc
    fish:  runner completion fish > ~/.config/fish/completions/runner.fish
    """
    from click.shell_completion import get_completion_class

    from runner.cli.main import cli

    found = get_completion_class(shell)
    if found is None:  # click knows all three
        raise click.BadParameter(f"no completion for {shell}")
    script = found(cli, {}, "runner", "_RUNNER_COMPLETE").source()
    click.echo(script)

"""`runner render`: the resolved manifest, or the cluster objects a submit would send."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.cli.params import chosen_context, context_option

DATA_FORMATS = click.Choice(["json", "yaml"])


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--output", "fmt", type=DATA_FORMATS, default="yaml", show_default=True)
@click.option(
    "--kubernetes", is_flag=True, help="The ConfigMap and Job a cluster run creates, for kubectl apply."
)
@click.option("--run-id", help="With --kubernetes: the run id (default: a new one).")
@click.option("--image", help="With --kubernetes: the job image (default: its content-hash reference).")
@click.option(
    "-n",
    "--namespace",
    help="With --kubernetes: the namespace (default: the manifest's, else the kubeconfig context's, "
    "as runner submit chooses it).",
)
@click.option("--input", "inputs", multiple=True, metavar="NAME=SOURCE", help="Point an input elsewhere.")
@context_option
def render(
    file: Path,
    fmt: str,
    *,
    kubernetes: bool,
    run_id: str | None,
    image: str | None,
    namespace: str | None,
    inputs: tuple[str, ...],
) -> None:
    """Print the resolved manifest (every default filled in), or with --kubernetes its cluster objects:
    exactly what `runner submit --backend kubernetes` sends, rendered the same way.

    \b
    runner render job.yaml --kubernetes | kubectl apply -f -
    (needs RUNNER_STORE=s3://... : pods collect into a store they can reach)
    """
    from runner.render import resolved_json, resolved_yaml
    from runner.spec import load_manifest

    loaded = load_manifest(file)
    manifest = loaded.manifest
    if not kubernetes:
        click.echo(resolved_json(manifest) if fmt == "json" else resolved_yaml(manifest), nl=False)
        return
    from dataclasses import replace

    from runner.backends.kubernetes.backend import KubernetesBackend
    from runner.cli.output import cluster_setting_warnings
    from runner.config import load_settings
    from runner.images.build import planned_reference
    from runner.render import to_yaml
    from runner.service.plan import parse_overrides, plan_run

    settings = load_settings()
    for warning in cluster_setting_warnings(settings):
        click.echo(f"warning: {warning}", err=True)
    plan = plan_run(loaded, parse_overrides(inputs), run_id=run_id)  # the plan runner submit makes
    if image is None:  # the reference runner submit builds and pushes, without building it
        image = planned_reference(
            manifest, loaded.context_dir, registry=settings.registry, skip=[settings.home]
        )[2]
    plan = replace(plan, image=image)
    backend = KubernetesBackend(chosen_context())
    objects = backend.objects(plan, backend.target(plan, settings, namespace))
    click.echo(to_yaml(objects) if fmt == "yaml" else json.dumps(objects, indent=2) + "\n", nl=False)

"""`voicebot models fetch|status|compile-graph`: install the speech models, show what is
installed, and compile the static decoding graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.common import modelstore
from services.common.config import Settings

models_app = typer.Typer(help="Install and inspect the speech models (models/manifest.yaml).")

ManifestOption = Annotated[
    Path, typer.Option("--manifest", help="Model manifest to use.", dir_okay=False)
]

_STATE_STYLE = {"verified": "green", "installed": "yellow", "missing": "red", "corrupt": "bold red"}


@models_app.command("fetch")
def fetch_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Models to install (default: every default model in the manifest)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Reinstall even if already installed and verified.")
    ] = False,
    manifest: ManifestOption = modelstore.MANIFEST_PATH,
) -> None:
    """Install models from VOICEBOT_MODELS_SRC or their official URLs, verifying checksums.

    Exits non-zero when any model could not be installed, saying why and how to supply it.
    """
    out, err = Console(), Console(stderr=True)
    try:
        manifest_ = modelstore.load_manifest(manifest)
        results = modelstore.fetch(Settings(), names, manifest_, err, force=force)
    except (modelstore.ManifestError, modelstore.UnknownModel) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    except OSError as exc:  # the models folder itself cannot be created or locked
        err.print(f"[red]error:[/] models folder: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    for result in results:
        if result.ok:
            out.print(
                f"[green]✓[/] {result.name}: {result.message} → {result.path}", highlight=False
            )
        else:
            err.print(f"[red]✗ {result.name}:[/] {result.message}", highlight=False, soft_wrap=True)
            if result.hint:
                err.print(result.hint, highlight=False, soft_wrap=True)
    if not all(result.ok for result in results):
        raise typer.Exit(1)


@models_app.command("status")
def status_command(
    verify: Annotated[
        bool, typer.Option("--verify", help="Re-hash installed files against the manifest.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
    manifest: ManifestOption = modelstore.MANIFEST_PATH,
) -> None:
    """Show each model: verified, installed (not by the fetcher), corrupt or missing."""
    settings = Settings()
    try:
        rows = modelstore.status(settings, modelstore.load_manifest(manifest), verify=verify)
    except modelstore.ManifestError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row.model_dump(mode="json"), ensure_ascii=False))
        return
    table = Table(
        title="Models", caption=f"in {settings.models_dir}; * optional, fetched only by name"
    )
    for column in ("Model", "State", "Licence", "Detail"):
        table.add_column(column, overflow="fold", no_wrap=column != "Detail")
    for row in rows:
        name = row.name if row.default else f"{row.name} *"
        path = row.path.relative_to(settings.models_dir)  # the caption names the folder
        licence = row.licence if row.commercial_use else f"{row.licence}\n[yellow]non-commercial[/]"
        table.add_row(
            f"{name}\n[dim]{path}[/]",
            f"[{_STATE_STYLE[row.state]}]{row.state}[/]",
            licence,
            row.detail,
        )
    Console().print(table)


@models_app.command("compile-graph")
def compile_graph_command(
    model: Annotated[
        Path | None, typer.Option(help="Vosk model folder (default: VOICEBOT_ASR_MODEL)")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="output folder (default: VOICEBOT_ASR_GRAPH or <model>-hclg)"),
    ] = None,
    if_possible: Annotated[
        bool,
        typer.Option(
            "--if-possible",
            help="exit 0 when it cannot be done here (no OpenFst tools, no model) or is done",
        ),
    ] = False,
) -> None:
    """Compose a small model's lookahead graph into one static HCLG.fst that every recognizer
    shares: about half the ASR CPU per call at load (services/asr/README.md). Needs OpenFst's
    tools (Debian/Ubuntu: apt-get install libfst-tools), minutes of CPU and a few GB of RAM."""
    from services.asr import graph

    settings = Settings()
    model = model or settings.vosk_model_path
    out = out or settings.vosk_graph_for(model)
    err = Console(stderr=True)
    try:
        graph.check(out, model)
    except graph.GraphError:
        pass
    else:
        Console().print(f"[green]✓[/] static graph up to date: {out}", highlight=False)
        return
    problem = graph.compile_problem(model)
    if problem:
        err.print(f"[yellow]static graph not compiled:[/] {problem}", highlight=False)
        raise typer.Exit(0 if if_possible else 1)
    with err.status(f"composing {model.name}/graph/HCLr.fst with Gr.fst (minutes)…"):
        try:
            info = graph.compile_graph(model, out)
        except (graph.GraphError, OSError) as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc
    Console().print(
        f"[green]✓[/] static graph → {out} ({info.hclg_bytes / 2**20:.0f} MiB, {info.compile_s} s)",
        highlight=False,
    )

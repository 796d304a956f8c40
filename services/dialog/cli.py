"""`voicebot kb …`: ask the KB, check it, lint it, run its tests, export its JSON Schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from services.dialog.engine import DialogEngine

kb_app = typer.Typer(help="Knowledge base: ask, check, test, schema.", no_args_is_help=True)

DirArg = Annotated[
    Path | None, typer.Argument(help="KB directory (default: VOICEBOT_KB_DIR or knowledge_base/)")
]


def _kb_dir(directory: Path | None) -> Path:
    from services.common.config import get_settings

    return directory or get_settings().kb_dir


def _quiet_logs() -> None:
    from services.common.logging import configure

    configure(level="WARNING")


def _load_engine(directory: Path | None) -> DialogEngine:
    """The engine for a KB; a broken KB exits 2 with every issue on stderr."""
    from services.dialog.engine import DialogEngine
    from services.dialog.loader import KBInvalid

    _quiet_logs()
    try:
        return DialogEngine.load(_kb_dir(directory))
    except KBInvalid as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@kb_app.command("ask")
def ask(
    text: Annotated[
        list[str] | None, typer.Argument(help="questions; none: one per line from stdin")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    kb: Annotated[Path | None, typer.Option(help="KB directory")] = None,
    dialog: Annotated[
        bool, typer.Option(help="questions are one conversation (context, slots)")
    ] = False,
) -> None:
    """Show what the bot would answer: decision, intent, score, slots, answer, alternatives."""
    engine = _load_engine(kb)
    questions = text if text else (line.strip() for line in sys.stdin)
    session = engine.new_session()
    for question in questions:
        if not question:
            continue
        if not dialog:
            session = engine.new_session()
        reply = session.respond(question)
        if as_json:
            typer.echo(json.dumps(reply.model_dump(mode="json"), ensure_ascii=False))
            continue
        slots = ", ".join(f"{k}={v}" for k, v in reply.slots.items())
        alts = ", ".join(f"{a.intent} {a.score:.2f}" for a in reply.alternatives)
        typer.echo(f"» {reply.text}")
        typer.echo(
            f"  {reply.decision} · {reply.intent or '—'} · {reply.score:.2f}"
            + (f" · {slots}" if slots else "")
        )
        typer.echo(f"  {reply.answer}")
        typer.echo(f"  alternatives: {alts or '—'}")


@kb_app.command("check")
def check(
    directory: DirArg = None,
    lint: Annotated[
        bool, typer.Option(help="also match every example against the whole KB")
    ] = True,
    strict: Annotated[bool, typer.Option(help="warnings fail too")] = False,
) -> None:
    """Validate the KB: every problem with file, line and how to fix it. Exit 1 on errors."""
    from services.dialog.calibrate import TrainingFailed
    from services.dialog.engine import Snapshot
    from services.dialog.lint import conflicts, expected
    from services.dialog.loader import Issue, load_kb

    _quiet_logs()
    kb, issues = load_kb(_kb_dir(directory))
    summary = None
    if kb is not None and lint and not any(i.severity == "error" for i in issues):
        try:
            snap = Snapshot.build(kb, issues)
        except TrainingFailed as exc:
            issues.append(
                Issue(
                    severity="error",
                    file=str(_kb_dir(directory)),
                    line=None,
                    message=f"the matcher cannot be trained on this KB: {exc}",
                    fix="give the scenarios examples with words callers say",
                )
            )
        else:
            issues += conflicts(snap)
            summary = expected(snap)
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i for i in issues if i.severity == "warning"]
    if errors:
        typer.echo(f"ERRORS ({len(errors)}):")
        for issue in errors:
            typer.echo(f"  {issue}")
    if warnings:
        typer.echo(f"WARNINGS ({len(warnings)}):")
        for issue in warnings:
            typer.echo(f"  {issue}")
    if kb is not None:
        examples = sum(len(s.examples) for s in kb.scenarios.values())
        typer.echo(
            f"{len(kb.scenarios)} scenarios, {examples} examples in {len(kb.files)} files: "
            f"{len(errors)} errors, {len(warnings)} warnings"
        )
    else:
        typer.echo(f"knowledge base rejected: {len(errors)} errors, {len(warnings)} warnings")
    if summary:
        typer.echo(summary)
    if errors or (strict and warnings):
        raise typer.Exit(1)


@kb_app.command("test")
def test(directory: DirArg = None) -> None:
    """Run every scenario's `tests:` phrases; exit 1 when any is not answered by its scenario."""
    from services.dialog.lint import run_tests

    engine = _load_engine(directory)
    results = run_tests(engine.snapshot)
    failed = [r for r in results if not r.ok]
    for r in failed:
        typer.echo(
            f"FAIL {r.file}:{r.line}: «{r.phrase}» should be `{r.scenario}`, "
            f"got {r.decision} `{r.got}` ({r.score:.2f})"
        )
    per: dict[str, list[bool]] = {}
    for r in results:
        per.setdefault(r.scenario, []).append(r.ok)
    for scenario, oks in per.items():
        typer.echo(f"  {scenario}: {sum(oks)}/{len(oks)} ({sum(oks) / len(oks):.0%})")
    typer.echo(f"{len(results) - len(failed)}/{len(results)} test phrases pass")
    if failed:
        raise typer.Exit(1)


@kb_app.command("schema")
def schema(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file; default stdout")
    ] = None,
) -> None:
    """Export the JSON Schema of a KB file (for editors' YAML tooling)."""
    from services.dialog.schema import KBFile

    text = json.dumps(KBFile.model_json_schema(), ensure_ascii=False, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)

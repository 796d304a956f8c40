"""`voicebot`: one command line for every service. Each package owns its subcommands."""

from __future__ import annotations

import typer

from services.asr.cli import asr_command, serve_asr
from services.common.models_cli import models_app
from services.dialog.cli import kb_app
from services.gateway.cli import call_command, serve_bot
from services.tts.cli import serve_tts, tts_command

app = typer.Typer(
    help="Горячая линия — voice robot for Russian-language hotlines.", no_args_is_help=True
)

serve_app = typer.Typer(help="Run the bot (no subcommand) or one service alone.")
serve_app.callback(invoke_without_command=True)(serve_bot)
serve_app.command("asr")(serve_asr)
serve_app.command("tts")(serve_tts)

app.add_typer(serve_app, name="serve")
app.add_typer(models_app, name="models")
app.add_typer(kb_app, name="kb")
app.command("asr")(asr_command)
app.command("tts")(tts_command)
app.command("call")(call_command)

if __name__ == "__main__":
    app()

"""A static decoding graph (HCLG.fst) compiled from a small model's lookahead graph.

Vosk's small models ship HCLr.fst + Gr.fst, composed on the fly. That composition is cached per
recognizer (~100 MB each), so N recognizers walk N private copies of the hot graph and each costs
about twice what one alone does (bench/results/asr_engine_scaling.md). Composing once, ahead of
time, gives one HCLG.fst that every recognizer shares: more memory once, about half the CPU per
stream. Runtime grammars still need the lookahead graph, so the source model stays in use too.

The composition needs OpenFst's command-line tools with the ngram and lookahead FST extensions
(Debian/Ubuntu: `apt-get install libfst-tools`); pip ships no build of them. Without the tools
the service keeps decoding on the lookahead graph, as before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

MARKER = "hclg.json"
TOOLS = ("fstsymbols", "fstcompose", "fstrelabel", "fstconvert")
# OpenFst finds an FST type's code by dlopen("<type>-fst.so"); Debian names these libraries
# differently, so compile() links them under the names OpenFst asks for.
EXTENSIONS = {"ngram-fst.so": "libfstngram.so", "olabel_lookahead-fst.so": "libfstlookahead.so"}
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib")
_COPIED = ("am", "conf", "ivector", "graph/phones", "graph/phones.txt", "README")
# Decoding options of ours, over the model's own (conf/model.conf). Kaldi runs the acoustic
# model on chunks of this many 10 ms frames; Vosk's default (20) repacks every weight matrix
# for the matrix product 2.5 times as often: 51 takes ~13% less CPU per stream
# (bench/results/asr_engine_native.md). Partials then come every ~0.5 s of audio; a final is
# computed to the last frame whatever the chunk.
DECODING_OPTIONS = {"--frames-per-chunk": "51"}


class GraphInfo(BaseModel):
    """The marker a compiled graph folder carries (written last: its presence means complete)."""

    source: str
    source_files: dict[str, int]
    hclg_bytes: int
    compile_s: float


class GraphError(Exception):
    """The static graph cannot be compiled here, or a compiled one does not fit its model."""


def lookahead_files(model: Path) -> dict[str, int]:
    """The source graph's files and sizes: a compiled graph records them to detect staleness."""
    graph = model / "graph"
    files = {name: graph / name for name in ("HCLr.fst", "Gr.fst", "disambig_tid.int")}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise GraphError(
            f"{model} has no lookahead graph (missing graph/{', graph/'.join(missing)})"
        )
    return {name: path.stat().st_size for name, path in files.items()}


def check(static: Path, model: Path) -> GraphInfo:
    """The compiled graph's marker if `static` was compiled from `model` as it is now. Its
    decoding options are brought up to this version's (a graph compiled before keeps working)."""
    marker = static / MARKER
    if not (static / "graph" / "HCLG.fst").is_file() or not marker.is_file():
        raise GraphError(f"no compiled graph at {static}")
    try:
        info = GraphInfo.model_validate_json(marker.read_text())
    except ValueError as exc:
        raise GraphError(f"{marker} is unreadable: {exc}") from exc
    if info.source_files != lookahead_files(model):
        raise GraphError(
            f"{static} was compiled from another version of {model}: run "
            "`voicebot models compile-graph` again"
        )
    conf = static / "conf" / "model.conf"
    wanted = decoding_conf(model)
    if not conf.is_file() or conf.read_text() != wanted:
        with contextlib.suppress(OSError):  # read-only install: its options stay as they are
            conf.write_text(wanted)
    return info


def decoding_conf(model: Path) -> str:
    """The static graph's conf/model.conf: the model's options, ours in place of theirs."""
    own = (model / "conf" / "model.conf").read_text().splitlines()
    kept = [line for line in own if line.split("=")[0].strip() not in DECODING_OPTIONS]
    return "\n".join([*kept, *(f"{k}={v}" for k, v in DECODING_OPTIONS.items())]) + "\n"


def compile_problem(model: Path) -> str | None:
    """Why compile_graph(model, …) cannot run here, or None."""
    try:
        lookahead_files(model)
    except GraphError as exc:
        return str(exc)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (
            f"OpenFst tools not found ({', '.join(missing)}): install them "
            "(Debian/Ubuntu: apt-get install libfst-tools)"
        )
    absent = [lib for lib in EXTENSIONS.values() if _find_lib(lib) is None]
    if absent:
        return f"OpenFst extensions not found ({', '.join(absent)}): install libfst-tools"
    return None


def compile_graph(model: Path, out: Path) -> GraphInfo:
    """Compose `model`'s HCLr.fst with Gr.fst into `out` (a Vosk model folder with a static
    graph). Atomic: built in a sibling temp folder, marker written last, then renamed."""
    problem = compile_problem(model)
    if problem:
        raise GraphError(problem)
    sources = lookahead_files(model)
    started = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        work, staged = Path(tmp) / "work", Path(tmp) / "model"
        (staged / "graph").mkdir(parents=True)
        work.mkdir()
        env = {"LD_LIBRARY_PATH": str(_link_extensions(work)), "PATH": os.environ["PATH"]}
        graph = model / "graph"
        # Gr.fst's word table goes to words.txt and is dropped from the FST: a duplicated entry
        # in a model's table makes the composed file unreadable to OpenFst.
        words = work / "words.txt"
        _run(
            [
                "fstsymbols",
                f"--save_osymbols={words}",
                "--clear_isymbols",
                "--clear_osymbols",
                str(graph / "Gr.fst"),
                str(work / "G.fst"),
            ],
            env,
        )
        _write_words(words, staged / "graph" / "words.txt")
        # Vosk maps the disambiguation transition-ids to epsilon while it composes; so do we.
        pairs = work / "disambig.pairs"
        disambig = (graph / "disambig_tid.int").read_text().split()
        pairs.write_text("".join(f"{tid} 0\n" for tid in disambig))
        hclg = staged / "graph" / "HCLG.fst"
        _pipe(
            [
                ["fstcompose", str(graph / "HCLr.fst"), str(work / "G.fst")],
                ["fstrelabel", f"--relabel_ipairs={pairs}"],
                ["fstconvert", "--fst_type=const", "-", str(hclg)],
            ],
            env,
            work,
        )
        for rel in _COPIED:
            src = model / rel
            if src.is_dir():
                shutil.copytree(src, staged / rel)
            elif src.is_file():
                shutil.copy2(src, staged / rel)
        (staged / "conf" / "model.conf").write_text(decoding_conf(model))
        info = GraphInfo(
            source=str(model.resolve()),
            source_files=sources,
            hclg_bytes=hclg.stat().st_size,
            compile_s=round(time.monotonic() - started, 1),
        )
        (staged / MARKER).write_text(info.model_dump_json(indent=2) + "\n")
        old = Path(tmp) / "old"
        if out.exists():
            out.rename(old)
        staged.rename(out)
    return info


def _find_lib(stem: str) -> Path | None:
    for folder in LIB_DIRS:
        found = sorted(Path(folder).glob(f"{stem}*")) if Path(folder).is_dir() else []
        if found:
            return found[0]
    return None


def _link_extensions(work: Path) -> Path:
    libs = work / "fst-ext"
    libs.mkdir()
    for name, stem in EXTENSIONS.items():
        lib = _find_lib(stem)
        assert lib is not None  # compile_problem() said so
        (libs / name).symlink_to(lib)
    return libs


def _write_words(raw: Path, dest: Path) -> None:
    seen: set[str] = set()
    with raw.open(encoding="utf-8") as src, dest.open("w", encoding="utf-8") as out:
        for line in src:
            if line not in seen:
                seen.add(line)
                out.write(line)


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise GraphError(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def _pipe(cmds: list[list[str]], env: dict[str, str], work: Path) -> None:
    """cmds[0] | cmds[1] | …, failing with the first failed stage's error (stderr to files:
    a stage that fills an unread pipe would stall the whole chain)."""
    procs: list[subprocess.Popen[bytes]] = []
    logs = [work / f"{n}-{cmd[0]}.log" for n, cmd in enumerate(cmds)]
    for cmd, log in zip(cmds, logs, strict=True):
        stdin = procs[-1].stdout if procs else None
        with log.open("wb") as err:
            procs.append(
                subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=err, env=env)
            )
        if stdin is not None:
            stdin.close()  # only the next stage reads it
    procs[-1].communicate()
    for cmd, proc, log in zip(cmds, procs, logs, strict=True):
        if proc.wait():
            detail = log.read_text(errors="replace").strip()[-500:]
            raise GraphError(f"{cmd[0]} failed ({proc.returncode}): {detail}")

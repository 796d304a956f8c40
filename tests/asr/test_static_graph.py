"""The static decoding graph: compiled from the real Korean model's lookahead graph with OpenFst,
it hears what the lookahead graph hears, grammar turns still work, and a graph that does not fit
its model is refused with the reason while the service decodes on the lookahead graph."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.asr import graph
from services.asr.engine import VoskRecognizer, load_recognizer
from services.asr.pool import DecoderPool
from services.common.audio import split_frames
from services.common.config import Settings

from .helpers import Speech, finals, run_stream, silence, similarity


def _cli(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path if path is not None else os.environ["PATH"]}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "models", "compile-graph", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def with_our_decoding_options(model: Path, out: Path) -> Path:
    """`model` read with the static graph's decoding options (its 51-frame chunks change what
    Vosk hears on speech this unsure as much as a graph could): only the graph differs then."""
    for name in ("am", "graph", "ivector"):
        (out / name).symlink_to(model / name)
    shutil.copytree(model / "conf", out / "conf")
    (out / "conf" / "model.conf").write_text(graph.decoding_conf(model))
    return out


async def test_static_graph_hears_what_the_lookahead_graph_hears(
    korean_model_path: Path,
    korean_static_graph: Path,
    sentence: Speech,
    digits: Speech,
    tmp_path: Path,
) -> None:
    """Vosk is not repeatable run to run on this low-confidence speech (either graph flips a word
    or two between fresh recognizers, more so since both read 51-frame chunks), so four runs
    each: some pair must agree to a syllable or two. A graph composed wrongly hears other words
    altogether (similarity below 0.5)."""
    same_options = with_our_decoding_options(korean_model_path, tmp_path)
    lookahead = VoskRecognizer(same_options, DecoderPool(), keep_warm=0)
    static = VoskRecognizer(
        korean_model_path, DecoderPool(), keep_warm=0, static_graph=korean_static_graph
    )
    assert static.describe()["static_graph_note"] == "in use"
    for speech in (sentence, digits):
        pcm = silence(0.5, 8000) + speech.at(8000) + silence(1.5, 8000)
        runs = {}
        for name, recognizer in (("lookahead", lookahead), ("static", static)):
            runs[name] = [finals(await run_stream(recognizer, pcm, 8000))[0] for _ in range(4)]
        score, got, want = max(
            ((similarity(g.text, w.text), g, w) for g in runs["static"] for w in runs["lookahead"]),
            key=lambda pair: pair[0],
        )
        assert score > 0.85, [[h.text for h in hyps] for hyps in runs.values()]
        assert got.words and [w.word for w in got.words] == got.text.split()
        assert abs(got.words[0].start - want.words[0].start) < 0.2


async def test_grammar_turn_leaves_the_warm_full_recognizer_for_the_next_call(
    korean_model_path: Path, korean_static_graph: Path, sentence: Speech
) -> None:
    recognizer = VoskRecognizer(
        korean_model_path, DecoderPool(), keep_warm=1, static_graph=korean_static_graph
    )
    phrases = ["안녕하세요", "네", "아니요"]
    turn = sentence.at(8000) + silence(1.5, 8000)
    stream = await recognizer.open_stream(8000, phrases=phrases)
    try:
        biased = [await stream.feed(c) for c in split_frames(turn, 8000, 100)]
    finally:
        await stream.close()
    assert {w for h in finals(biased) for w in h.text.split()} <= set(phrases)
    assert recognizer.describe()["warm_recognizers"] == 1  # the full-LM one, kept warm
    free = finals(await run_stream(recognizer, turn, 8000))
    assert {w for h in free for w in h.text.split()} - set(phrases), "grammar leaked"


def test_compile_again_is_a_no_op_when_up_to_date(
    korean_model_path: Path, korean_static_graph: Path
) -> None:
    done = _cli("--model", str(korean_model_path), "--out", str(korean_static_graph))
    assert done.returncode == 0 and "up to date" in done.stdout


def test_stale_or_broken_graph_is_refused_and_lookahead_serves(
    korean_model_path: Path, korean_static_graph: Path, tmp_path: Path
) -> None:
    stale = tmp_path / "stale"
    (stale / "graph").mkdir(parents=True)
    (stale / "graph" / "HCLG.fst").symlink_to(korean_static_graph / "graph" / "HCLG.fst")
    info = json.loads((korean_static_graph / graph.MARKER).read_text())
    info["source_files"]["Gr.fst"] += 1  # compiled from another version of the model
    (stale / graph.MARKER).write_text(json.dumps(info))
    recognizer = VoskRecognizer(korean_model_path, DecoderPool(), static_graph=stale)
    assert recognizer.static_graph is None
    assert "another version" in str(recognizer.describe()["static_graph_note"])

    (stale / graph.MARKER).write_text("{not json")
    with pytest.raises(graph.GraphError, match="unreadable"):
        graph.check(stale, korean_model_path)
    with pytest.raises(graph.GraphError, match="no compiled graph"):
        graph.check(tmp_path / "nothing", korean_model_path)


def test_gateway_settings_pick_the_compiled_graph_up(
    korean_model_path: Path, korean_static_graph: Path
) -> None:
    settings = Settings(asr_model=korean_model_path, asr_graph=korean_static_graph)
    described = load_recognizer(settings).describe()
    assert described["static_graph"] == str(korean_static_graph)


def test_without_openfst_tools_it_says_what_to_install(
    korean_model_path: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bin"  # a PATH with python only: no fst* tools
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    out = tmp_path / "hclg"
    done = _cli("--model", str(korean_model_path), "--out", str(out), path=str(bare))
    assert done.returncode == 1 and "libfst-tools" in done.stderr and not out.exists()
    assert _cli("--model", str(korean_model_path), "--if-possible", path=str(bare)).returncode == 0


def test_a_model_without_a_lookahead_graph_cannot_be_compiled(
    korean_model_path: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(korean_model_path / "conf", model / "conf")
    problem = graph.compile_problem(model)
    assert problem and "HCLr.fst" in problem
    done = _cli("--model", str(model), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "HCLr.fst" in done.stderr


def test_a_damaged_graph_file_leaves_the_lookahead_graph_serving(
    korean_model_path: Path, korean_static_graph: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(korean_static_graph, damaged, ignore=shutil.ignore_patterns("HCLG.fst"))
    with (korean_static_graph / "graph" / "HCLG.fst").open("rb") as src:
        (damaged / "graph" / "HCLG.fst").write_bytes(src.read(1 << 20))  # cut short
    recognizer = VoskRecognizer(korean_model_path, DecoderPool(), static_graph=damaged)
    assert recognizer.static_graph is None
    assert "could not load" in str(recognizer.describe()["static_graph_note"])


def test_compiled_graph_decodes_in_chunks_of_51_frames(
    korean_model_path: Path, korean_static_graph: Path, tmp_path: Path
) -> None:
    """Our decoding options sit over the model's own; a graph compiled before them gets them
    when it is next loaded (no recompile)."""
    conf = (korean_static_graph / "conf" / "model.conf").read_text().splitlines()
    assert "--frames-per-chunk=51" in conf
    assert "--max-active=3000" in conf  # the model's own beam settings are kept

    older = tmp_path / "older"
    shutil.copytree(korean_static_graph, older, ignore=shutil.ignore_patterns("HCLG.fst"))
    (older / "graph" / "HCLG.fst").symlink_to(korean_static_graph / "graph" / "HCLG.fst")
    shutil.copy(korean_model_path / "conf" / "model.conf", older / "conf" / "model.conf")
    recognizer = VoskRecognizer(korean_model_path, DecoderPool(), static_graph=older)
    assert recognizer.static_graph == older
    assert (older / "conf" / "model.conf").read_text().splitlines() == conf

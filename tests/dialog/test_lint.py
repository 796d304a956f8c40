"""Conflict lint and `tests:` phrases, on a KB with a planted conflict."""

from __future__ import annotations

from services.dialog.engine import Snapshot
from services.dialog.lint import conflicts, run_tests
from services.dialog.loader import require_kb

PLANTED = """\
scenarios:
  - id: heating
    title: Отопление
    examples:
      - холодные батареи в квартире
      - не включили отопление
      - батареи еле теплые
    answers: ["Линия отопления."]
    tests: [батареи холодные]
  - id: housing
    title: ЖКХ
    examples:
      - сломался лифт
      - не горит лампочка в подъезде
      - в квартире холодные батареи
    answers: ["ЕДЦ."]
    tests: [лифт сломался, холодно дома батареи]
"""


def test_planted_conflict_is_found_with_its_line(write_kb) -> None:
    kb, warnings = require_kb(write_kb({"a.yaml": PLANTED}))
    found = conflicts(Snapshot.build(kb, warnings))
    planted = [i for i in found if "«в квартире холодные батареи»" in i.message]
    assert planted, [str(i) for i in found]
    assert planted[0].line == 15 and "matches `heating` better" in planted[0].message
    assert planted[0].severity == "warning" and "move it to `heating`" in planted[0].fix


def test_test_phrases_report_failures(write_kb) -> None:
    kb, warnings = require_kb(write_kb({"a.yaml": PLANTED}))
    results = {r.phrase: r for r in run_tests(Snapshot.build(kb, warnings))}
    assert results["лифт сломался"].ok
    bad = results["холодно дома батареи"]
    assert not bad.ok and bad.scenario == "housing" and bad.line == 17


def test_demo_kb_passes_its_own_tests(demo_engine) -> None:
    failed = [r.phrase for r in run_tests(demo_engine.snapshot) if not r.ok]
    # Known miss of the model fitted on the demo KB (issue 14): only the lemma «мочь» is left
    # of «что вы можете», which the model is not sure enough of; the old matcher answered it.
    assert failed in ([], ["что вы можете"])

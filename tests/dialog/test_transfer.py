"""Transfer: the method whose constants were chosen on the demo KB, trained at load on the bank
KB it never saw (bench/eval/kb_bank/), on fixed phrasings. The lines were written before the
matcher was ever run on the bank KB, from its scenario titles only; six that turned out to equal
one of its examples or a line of bench/eval/kb_bank_eval.yaml were reworded (test below)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.dialog.engine import DialogEngine

BANK_KB = Path(__file__).resolve().parents[2] / "bench" / "eval" / "kb_bank"

IN_SCOPE = [
    ("куда-то делась моя карта не могу найти", "card_lost"),
    ("у меня украли кошелек с картой", "card_stolen"),
    ("банкомат съел мою карту", "atm_card_captured"),
    ("банкомат деньги не выдал а с карты списал", "atm_cash_not_dispensed"),
    ("вылетел из головы пин от карточки", "pin_forgot"),
    ("хочу поменять пин код", "pin_change"),
    ("хочу проверить остаток на карточке", "account_balance"),
    ("коды подтверждения по смс перестали приходить", "app_sms_codes_not_coming"),
    ("сколько стоит обслуживание карты в год", "fee_annual_service"),
    ("скинуть деньги другу по номеру мобильного", "transfer_sbp_phone"),
    ("не начислили кешбэк за прошлый месяц", "cashback_not_credited"),
    ("сколько минимально внести по кредитной карте в этом месяце", "credit_minimum_payment"),
    ("хочу оформить детскую карту", "product_kids_card"),
    ("до скольки работают отделения банка", "branch_hours"),
    ("перевод ушел не тому человеку", "transfer_wrong_recipient"),
]
# Known failures when first run (issue 14): «потерять … делать» / «сколько стоить обслуживание»
# carry the bank scenario; the unknown «ключ машина» / «машина дилер» do not outweigh them.
MISSED = pytest.mark.xfail(strict=True, reason="near miss answered by the bank KB's model")
NEAR_MISSES = [  # share words with a bank scenario, ask something the bank line does not answer
    pytest.param("потерял ключи от машины что делать", marks=MISSED),
    "как поменять пароль от вайфая",
    pytest.param("сколько стоит обслуживание машины у дилера", marks=MISSED),
    "до скольки работает почта россии",
    "как перевести текст с английского",
]


def plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower().replace("ё", "е")).split())


@pytest.fixture(scope="module")
def bank() -> DialogEngine:
    if not BANK_KB.exists():
        pytest.skip("bench/eval/kb_bank is not in this checkout")
    return DialogEngine.load(BANK_KB)


def test_bank_questions_are_answered_right(bank: DialogEngine) -> None:
    outcomes = {text: bank.snapshot.match(text)[0] for text, _ in IN_SCOPE}
    right = [
        t
        for t, intent in IN_SCOPE
        if outcomes[t].decision == "answer" and outcomes[t].ranked[0].intent == intent
    ]
    wrong = [
        t
        for t, intent in IN_SCOPE
        if outcomes[t].decision == "answer" and outcomes[t].ranked[0].intent != intent
    ]
    assert not wrong
    # The issue asks 85 % (13 of 15); 11 are answered right at this commit: a regression guard,
    # not the target.
    assert len(right) >= 11, {t: (m.decision, m.ranked[:2]) for t, m in outcomes.items()}


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_bank_near_misses_stay_unanswered(bank: DialogEngine, text: str) -> None:
    match, _ = bank.snapshot.match(text)
    assert match.decision != "answer", match


def test_lines_are_neither_bank_examples_nor_eval_lines(bank: DialogEngine) -> None:
    kb = bank.snapshot.kb
    known = {plain(t) for sc in kb.scenarios.values() for t in (*sc.examples, *sc.tests)}
    eval_file = BANK_KB.parent / "kb_bank_eval.yaml"
    known |= {plain(line.strip(" -").split("#")[0]) for line in eval_file.read_text().splitlines()}
    lines = [t for t, _ in IN_SCOPE] + [
        p if isinstance(p, str) else p.values[0] for p in NEAR_MISSES
    ]
    assert not [t for t in lines if plain(t) in known]

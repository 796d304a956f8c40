"""Transfer: the method whose constants were chosen on the demo KB, trained at load on the bank
KB it never saw (bench/eval/kb_bank/), on fixed phrasings. The lines were written before the
matcher was ever run on the bank KB, from its scenario titles only; none is one of its examples
or a line of bench/eval/kb_bank_eval.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.dialog.engine import DialogEngine

BANK_KB = Path(__file__).resolve().parents[2] / "bench" / "eval" / "kb_bank"

IN_SCOPE = [
    ("я потерял карту что делать", "card_lost"),
    ("у меня украли кошелек с картой", "card_stolen"),
    ("банкомат съел мою карту", "atm_card_captured"),
    ("банкомат деньги не выдал а с карты списал", "atm_cash_not_dispensed"),
    ("не помню пин код от карты", "pin_forgot"),
    ("хочу поменять пин код", "pin_change"),
    ("как узнать сколько денег на карте", "account_balance"),
    ("не приходит смс с кодом", "app_sms_codes_not_coming"),
    ("сколько стоит обслуживание карты в год", "fee_annual_service"),
    ("как перевести деньги по номеру телефона", "transfer_sbp_phone"),
    ("не начислили кешбэк за прошлый месяц", "cashback_not_credited"),
    ("какой минимальный платеж по кредитке", "credit_minimum_payment"),
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
    assert len(right) >= 12, {t: (m.decision, m.ranked[:2]) for t, m in outcomes.items()}


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_bank_near_misses_stay_unanswered(bank: DialogEngine, text: str) -> None:
    match, _ = bank.snapshot.match(text)
    assert match.decision != "answer", match

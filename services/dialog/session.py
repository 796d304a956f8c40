"""One call's dialogue: context (repeat, open topic), clarify questions, key menus, slot filling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.dialog.base import Decision, Expect, Reply
from services.dialog.entities import Found
from services.dialog.matcher import Match
from services.dialog.schema import EntityValue, Slot

if TYPE_CHECKING:
    from services.dialog.engine import Snapshot

FIRST = {"1", "первый"}
SECOND = {"2", "второй", "последний"}
REFUSE = {"нет", "не", "другой"}  # «нет», «ни то ни другое» (particles are dropped)
CLARIFY_PICK_GAP = 0.05  # a reply to «… или …?» must favour one option by this much
# Number words become digits in the normalizer; ordinals («второй») stay lemmas.
ORDINALS = {
    "первый": "1",
    "второй": "2",
    "третий": "3",
    "четвертый": "4",
    "пятый": "5",
    "шестой": "6",
    "седьмой": "7",
    "восьмой": "8",
    "девятый": "9",
}
# Words around a spoken menu choice: «номер два», «давайте третий», «нажимаю один».
MENU_WORDS = {
    "номер",
    "пункт",
    "вариант",
    "клавиша",
    "кнопка",
    "цифра",
    "тема",
    "нажать",
    "нажимать",
    "выбрать",
    "выбирать",
    "давать",
    "хотеть",
}
DIGIT_WORDS = ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"]
# Heard in every biased turn: a caller may ask for a person at any time, and "[unk]" keeps
# speech outside the list unknown instead of forcing it onto the nearest phrase.
ALWAYS_HEARD = ["оператор", "[unk]"]

SlotValue = EntityValue | str  # a value of an entity list, or the digits keyed in or said


@dataclass
class _PendingSlot:
    intent: str
    slot: str
    confidence: float
    filled: dict[str, SlotValue] = field(default_factory=dict)  # slots already given
    retried: bool = False


@dataclass
class _PendingClarify:
    first: str
    second: str
    confidence: float


@dataclass
class _PendingMenu:
    intent: str  # the scenario whose answer offers the menu
    options: dict[str, str]  # key -> scenario
    heard: bool = True  # False: the main menu, whose options the caller has not heard yet
    retried: bool = False


def _menu_key(tokens: list[str]) -> str | None:
    """The number a caller keyed or said as a menu choice («2», «два», «второй», «номер два»)."""
    rest = [t for t in tokens if t not in MENU_WORDS]
    if len(rest) != 1:
        return None
    return ORDINALS.get(rest[0], rest[0] if rest[0].isdigit() else None)


def _slot_value(slot: Slot, tokens: list[str], found: list[Found]) -> SlotValue | None:
    if slot.digits is not None:
        # «один два три», «сто двадцать три» and the keys "123" all reach here as digit tokens.
        digits = "".join(t for t in tokens if t.isdigit())
        return digits if slot.digits.min_length <= len(digits) <= slot.digits.max_length else None
    return next((f.value for f in found if f.entity == slot.entity), None)


def _shown(values: dict[str, SlotValue]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else v.name for k, v in values.items()}


class Session:
    """Dialog state of one call. Not thread-safe: one call, one turn at a time."""

    def __init__(self, snapshot: Snapshot):
        self.snap = snapshot
        self.settings = snapshot.kb.settings
        self._last: Reply | None = None  # last thing the bot said (for «повторите»)
        self._topic: str | None = None  # scenario of the last answer (for «а в выходные?»)
        self._pending: _PendingSlot | _PendingClarify | _PendingMenu | None = None
        self._turns: dict[str, int] = {}  # answers given per scenario: rotates the variants

    def greeting(self) -> str:
        text = self.settings.greeting
        self._last = Reply(text="", decision="answer", intent=None, score=1.0, answer=text)
        return text

    def respond(self, utterance: str) -> Reply:
        reply = self._respond(utterance)
        reply.expect = self.expecting()
        return reply

    def expecting(self) -> Expect | None:
        """How the gateway should listen for the caller's next turn (None: as usual)."""
        pending = self._pending
        if isinstance(pending, _PendingMenu):
            return Expect(kind="menu", dtmf_max_length=1, endpointing="short")
        if isinstance(pending, _PendingClarify):
            return Expect(kind="clarify", endpointing="short")
        if isinstance(pending, _PendingSlot):
            slot = self.snap.scenario(pending.intent).slots[pending.slot]
            if slot.digits is not None:
                return Expect(
                    kind="digits",
                    slot=pending.slot,
                    dtmf_max_length=slot.digits.max_length,
                    phrases=[*DIGIT_WORDS, *ALWAYS_HEARD],
                    endpointing="dictation",
                )
            return Expect(
                kind="entity",
                slot=pending.slot,
                phrases=[*self.snap.entity_phrases(slot.entity or ""), *ALWAYS_HEARD],
            )
        if self.settings.main_menu:  # a key pressed now picks from the main menu at once
            return Expect(kind="menu", dtmf_max_length=1)
        return None

    def _respond(self, utterance: str) -> Reply:
        match, found = self.snap.match(utterance, context=self._topic)
        pending, self._pending = self._pending, None
        main = self.settings.main_menu
        if pending is None and main and utterance.strip().isdigit():
            pending = _PendingMenu(main, self.snap.scenario(main).menu, heard=False)
        if isinstance(pending, _PendingMenu):
            key = _menu_key(match.tokens)
            if key in pending.options:
                return self._answer(utterance, match, pending.options[key], found, 1.0)
            if key is not None and not pending.heard:  # read the main menu to the caller
                return self._answer(utterance, match, pending.intent, found, 1.0)
            if key is not None:
                if pending.retried:
                    return self._handoff(utterance, match, "menu_not_understood")
                pending.retried = True
                self._pending = pending
                options = self.snap.menu_options(pending.options)
                text = self.settings.menu_retry.format(options=options)
                return self._say(utterance, match, "clarify", pending.intent, text, score=1.0)
        elif isinstance(pending, _PendingClarify):
            choice = self._pick(match, pending)
            if choice == "refuse":
                return self._handoff(utterance, match, "clarify_refused")
            if choice is not None:
                return self._answer(utterance, match, choice, found, pending.confidence)
        elif isinstance(pending, _PendingSlot):
            scenario = self.snap.scenario(pending.intent)
            slot = scenario.slots[pending.slot]
            value = _slot_value(slot, match.tokens, found)
            if value is not None:
                pending.filled[pending.slot] = value
                return self._answer(
                    utterance, match, pending.intent, found, pending.confidence, pending.filled
                )
            keyed = slot.digits is not None and any(t.isdigit() for t in match.tokens)
            if keyed or match.decision != "answer" or match.ranked[0].intent == pending.intent:
                if pending.retried:
                    return self._handoff(utterance, match, "slot_not_understood")
                pending.retried = True
                self._pending = pending
                prompt = self.settings.slot_retry.format(prompt=slot.prompt)
                return self._say(
                    utterance,
                    match,
                    "clarify",
                    pending.intent,
                    prompt,
                    slots=_shown(pending.filled),
                )
        if not match.tokens and not (
            self._last and self._last.answer == self.settings.not_understood
        ):
            # only fillers or noise («алло?», «э-э»): ask once more before calling a person
            return self._say(utterance, match, "clarify", None, self.settings.not_understood)
        if match.decision == "handoff" or match.top is None:
            return self._handoff(
                utterance, match, "low_confidence" if match.top else "not_understood"
            )
        top = match.ranked[0].intent
        if match.decision == "clarify" and not isinstance(pending, _PendingClarify):
            second = match.ranked[1].intent
            self._pending = _PendingClarify(top, second, match.confidence)
            question = self.settings.clarify.format(
                first=self.snap.scenario(top).display_topic,
                second=self.snap.scenario(second).display_topic,
            )
            return self._say(utterance, match, "clarify", top, question)
        if match.decision == "clarify":  # asked once already: a person will sort it out
            return self._handoff(utterance, match, "still_ambiguous")
        if self.snap.scenario(top).action == "repeat":
            self._pending = pending  # repeating does not cancel an open question
        return self._answer(utterance, match, top, found, match.confidence)

    # --- steps ----------------------------------------------------------------------------------

    def _pick(self, match: Match, pending: _PendingClarify) -> str | None:
        """Which option of «… или …?» the caller chose; None: they asked something else."""
        tokens = set(match.tokens)
        if tokens & FIRST:
            return pending.first
        if tokens & SECOND:
            return pending.second
        raw = {c.intent: c.score for c in match.ranked}
        first, second = raw.get(pending.first, 0.0), raw.get(pending.second, 0.0)
        if match.decision == "answer" and match.ranked[0].intent not in (
            pending.first,
            pending.second,
        ):
            return None
        if abs(first - second) >= CLARIFY_PICK_GAP:
            return pending.first if first > second else pending.second
        if tokens and tokens <= REFUSE:
            return "refuse"
        return None

    def _answer(
        self,
        utterance: str,
        match: Match,
        intent: str,
        found: list[Found],
        conf: float,
        filled: dict[str, SlotValue] | None = None,
    ) -> Reply:
        scenario = self.snap.scenario(intent)
        if scenario.action == "repeat":
            if self._last is None:
                return self._say(
                    utterance, match, "answer", intent, self.settings.nothing_to_repeat
                )
            return self._last.model_copy(
                update={
                    "text": utterance,
                    "intent": intent,
                    "score": round(match.confidence, 4),
                    "alternatives": self.snap.alternatives(match),
                }
            )
        values: dict[str, SlotValue] = dict(filled or {})
        for name, slot in scenario.slots.items():
            if name in values:
                continue
            value = None if slot.digits else _slot_value(slot, match.tokens, found)
            if value is None:  # digits come only as the answer to their own prompt
                self._pending = _PendingSlot(intent, name, conf, values)
                return self._say(
                    utterance,
                    match,
                    "clarify",
                    intent,
                    slot.prompt,
                    score=conf,
                    slots=_shown(values),
                )
            values[name] = value
        count = self._turns.get(intent, 0)
        self._turns[intent] = count + 1
        text = self.snap.render(scenario.answers[count % len(scenario.answers)], values, scenario)
        if scenario.menu:
            text = f"{text} {self.snap.menu_options(scenario.menu)}"
            self._pending = _PendingMenu(intent, scenario.menu)
        if scenario.followup:
            text = f"{text} {self.snap.render(scenario.followup, values, scenario)}"
        self._topic = intent
        slots = _shown(values)
        if scenario.handoff:
            return self._say(
                utterance,
                match,
                "handoff",
                intent,
                text,
                score=conf,
                slots=slots,
                queue=scenario.handoff.queue,
                skill=scenario.handoff.skill,
                reason=f"scenario:{intent}",
            )
        return self._say(
            utterance,
            match,
            "answer",
            intent,
            text,
            score=conf,
            slots=slots,
            end_call=scenario.action == "end_call",
        )

    def _handoff(self, utterance: str, match: Match, reason: str) -> Reply:
        intent = match.top.intent if match.top else None
        return self._say(
            utterance,
            match,
            "handoff",
            intent,
            self.settings.handoff,
            queue=self.settings.handoff_queue,
            reason=reason,
        )

    def _say(
        self,
        utterance: str,
        match: Match,
        decision: Decision,
        intent: str | None,
        answer: str,
        *,
        score: float | None = None,
        slots: dict[str, str] | None = None,
        queue: str | None = None,
        skill: str | None = None,
        reason: str | None = None,
        end_call: bool = False,
    ) -> Reply:
        reply = Reply(
            text=utterance,
            decision=decision,
            intent=intent,
            score=round(match.confidence if score is None else score, 4),
            answer=answer,
            slots=slots or {},
            alternatives=self.snap.alternatives(match),
            handoff_queue=queue,
            handoff_skill=skill,
            handoff_reason=reason,
            end_call=end_call,
        )
        self._last = reply
        return reply

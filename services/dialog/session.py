"""One call's dialogue: conversation acts, context (repeat, open topic), clarify questions, key
menus, slot filling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.dialog.acts import Heard
from services.dialog.base import Act, Decision, Expect, Reason, Reply
from services.dialog.entities import Found
from services.dialog.matcher import Match
from services.dialog.schema import EntityValue, Scenario, Slot

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
# Heard in every biased turn: a caller may ask for a person, say goodbye or ask to repeat at
# any time (a goodbye heard as "[unk]" would be a slot retry, then a handoff), and "[unk]" keeps
# speech outside the list unknown instead of forcing it onto the nearest phrase.
ALWAYS_HEARD = ["оператор", "повторите", "спасибо", "до свидания", "[unk]"]

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
    asked_again: bool = False  # «да» to «… или …?» got «Уточните, пожалуйста: … или …?»


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
        self._turns: dict[str, int] = {}  # answers given per scenario or act: rotates variants
        self._offer = False  # the bot's last words asked a yes/no question («Могу ещё …?»)

    def greeting(self) -> str:
        text = self.settings.greeting
        self._last = Reply(text="", decision="answer", intent=None, score=1.0, answer=text)
        return text

    def respond(self, utterance: str) -> Reply:
        reply = self._respond(utterance)
        reply.expect = self.expecting()
        # «Пожалуйста! Могу ещё чем-нибудь помочь?», or a scenario's followup: «да» / «нет» /
        # «спасибо» next answer it.
        self._offer = (
            self._pending is None
            and reply.decision == "answer"
            and not reply.end_call
            and reply.answer.rstrip().endswith("?")
        )
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
        heard = self.snap.kb.acts.recognize(utterance)
        match, found = self.snap.match(utterance, context=self._topic)
        pending, self._pending = self._pending, None
        if heard.only_acts:  # «пока», «да», «алло, вы меня слышите?», «оператора»
            reply = self._act_turn(utterance, match, heard, pending)
            if reply is not None:
                return reply
        elif heard.acts:  # «спасибо, а когда работает линия»: the question, not the act
            match, found = self._question(heard, match, found)
            if match.decision != "answer" and Act.OPERATOR in heard.asked:
                return self._act(utterance, match, Act.OPERATOR)  # «соедините с сотрудником банка»
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
                    return self._handoff(utterance, match, Reason.MENU_NOT_UNDERSTOOD)
                pending.retried = True
                self._pending = pending
                options = self.snap.menu_options(pending.options)
                text = self.settings.menu_retry.format(options=options)
                return self._say(utterance, match, "clarify", pending.intent, text, score=1.0)
        elif isinstance(pending, _PendingClarify):
            choice = self._pick(match, pending)
            if choice == "refuse":
                return self._handoff(utterance, match, Reason.CLARIFY_REFUSED)
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
                    return self._handoff(utterance, match, Reason.SLOT_NOT_UNDERSTOOD)
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
        if match.decision == "handoff" or match.top is None:
            # Ask to rephrase; an open question stays open. The gateway counts these in a row.
            self._pending = pending
            return self._say(
                utterance,
                match,
                "clarify",
                None,
                self.settings.not_understood,
                reason=Reason.NOT_UNDERSTOOD,
            )
        top = match.ranked[0].intent
        if match.decision == "clarify" and not isinstance(pending, _PendingClarify):
            second = match.ranked[1].intent
            self._pending = _PendingClarify(top, second, match.confidence)
            question = self._clarify_text(self.settings.clarify, top, second)
            return self._say(utterance, match, "clarify", top, question)
        if match.decision == "clarify":  # asked once already: a person will sort it out
            return self._handoff(utterance, match, Reason.STILL_AMBIGUOUS)
        if self.snap.kb.acts.linked.get(top) is Act.REPEAT:
            self._pending = pending  # repeating does not cancel an open question
        return self._answer(utterance, match, top, found, match.confidence)

    # --- conversation acts ----------------------------------------------------------------------

    def _act_turn(
        self,
        utterance: str,
        match: Match,
        heard: Heard,
        pending: _PendingSlot | _PendingClarify | _PendingMenu | None,
    ) -> Reply | None:
        """A turn made only of acts; None: let the open question take it (a slot's value)."""
        act = heard.primary(self._offer)
        if act in (Act.YES, Act.NO):
            if isinstance(pending, _PendingSlot):
                return None
            if isinstance(pending, _PendingClarify):
                if act is Act.NO:
                    return self._handoff(utterance, match, Reason.CLARIFY_REFUSED)
                if pending.asked_again:
                    return self._handoff(utterance, match, Reason.STILL_AMBIGUOUS)
                pending.asked_again = True
                self._pending = pending
                again = self.snap.kb.acts.texts.clarify_again
                text = self._clarify_text(again, pending.first, pending.second)
                return self._say(utterance, match, "clarify", pending.first, text, act=act)
            if self._offer and act is Act.YES:  # «Могу ещё чем-нибудь помочь?» — «да»
                text = self.snap.kb.acts.texts.yes_after_offer
                return self._say(utterance, match, "answer", None, text, score=1.0, act=act)
        if self._offer and act in (Act.NO, Act.THANKS):  # «нет», «спасибо»: nothing more
            return self._act(utterance, match, Act.BYE, heard=act)
        if act in (Act.REPEAT, Act.HELLO):  # neither cancels an open question
            self._pending = pending
        if act is Act.HELLO and (pending is not None or self._offer) and self._last:
            text = self.snap.kb.acts.texts.hello_open.format(last=self._last.answer)
            return self._say(utterance, match, "answer", None, text, score=1.0, act=act)
        return self._act(utterance, match, act)

    def _act(
        self,
        utterance: str,
        match: Match,
        act: Act,
        scenario: Scenario | None = None,
        heard: Act | None = None,
    ) -> Reply:
        """Say the act's answer: the matched scenario's, the KB's override's, or the built-in."""
        acts = self.snap.kb.acts
        source = acts.source(act, scenario)
        intent = source.id if source else None
        if act is Act.REPEAT:
            if self._last is None:
                text = self.settings.nothing_to_repeat
                return self._say(utterance, match, "answer", intent, text, score=1.0, act=act)
            return self._last.model_copy(
                update={
                    "text": utterance,
                    "intent": intent,
                    "score": 1.0,
                    "alternatives": self.snap.alternatives(match),
                    "act": act,
                }
            )
        text = self._rotate(intent or act.value, acts.answers(act, scenario))
        if act is Act.OPERATOR:
            handoff = source.handoff if source else None
            return self._say(
                utterance,
                match,
                "handoff",
                intent,
                text,
                score=1.0,
                queue=handoff.queue if handoff else self.settings.handoff_queue,
                skill=handoff.skill if handoff else None,
                reason=Reason.OPERATOR,
                act=act,
            )
        return self._say(
            utterance,
            match,
            "answer",
            intent,
            text,
            score=1.0,
            end_call=act is Act.BYE,
            act=heard or act,
        )

    def _question(
        self, heard: Heard, match: Match, found: list[Found]
    ) -> tuple[Match, list[Found]]:
        """A question said with act words: when those words pulled it to an act scenario (or it
        was not understood), match it again without them and keep that if it is answered. An
        operator named without a request is not asked for: «оператор банкомата забрал карту»."""
        linked = self.snap.kb.acts.linked
        top = linked.get(match.top.intent) if match.top else None
        if match.decision == "answer" and top is None:
            return match, found
        again, found_again = self.snap.match(heard.rest, context=self._topic)
        if again.decision == "answer" and again.ranked[0].intent not in linked:
            return again, found_again
        if top is Act.OPERATOR and Act.OPERATOR not in heard.asked:
            return again, found_again
        return match, found

    def _rotate(self, key: str, answers: list[str]) -> str:
        """The next answer variant of a scenario or act, so repeats differ."""
        count = self._turns.get(key, 0)
        self._turns[key] = count + 1
        return answers[count % len(answers)]

    def _clarify_text(self, template: str, first: str, second: str) -> str:
        """«Вы имеете в виду {first} или {second}?» with the two scenarios' topics."""
        return template.format(
            first=self.snap.scenario(first).display_topic,
            second=self.snap.scenario(second).display_topic,
        )

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
        act = self.snap.kb.acts.linked.get(intent)
        if act is not None:  # the KB's own «до свидания», «оператора», «повторите»
            return self._act(utterance, match, act, scenario)
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
        text = self.snap.render(self._rotate(intent, scenario.answers), values, scenario)
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
                reason=Reason.SCENARIO,
            )
        return self._say(utterance, match, "answer", intent, text, score=conf, slots=slots)

    def _handoff(self, utterance: str, match: Match, reason: Reason) -> Reply:
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
        reason: Reason | None = None,
        act: Act | None = None,
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
            reason=reason,
            act=act,
            end_call=end_call,
        )
        self._last = reply
        return reply

"""One call's dialogue: context (repeat, open topic), clarify questions and slot filling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.dialog.base import Decision, Reply
from services.dialog.entities import Found
from services.dialog.matcher import Match

if TYPE_CHECKING:
    from services.dialog.engine import Snapshot

FIRST = {"1", "первый"}
SECOND = {"2", "второй", "последний"}
REFUSE = {"нет", "не", "другой"}  # «нет», «ни то ни другое» (particles are dropped)
CLARIFY_PICK_GAP = 0.05  # a reply to «… или …?» must favour one option by this much


@dataclass
class _PendingSlot:
    intent: str
    slot: str
    confidence: float
    retried: bool = False


@dataclass
class _PendingClarify:
    first: str
    second: str
    confidence: float


class Session:
    """Dialog state of one call. Not thread-safe: one call, one turn at a time."""

    def __init__(self, snapshot: Snapshot):
        self.snap = snapshot
        self.settings = snapshot.kb.settings
        self._last: Reply | None = None  # last thing the bot said (for «повторите»)
        self._topic: str | None = None  # scenario of the last answer (for «а в выходные?»)
        self._pending: _PendingSlot | _PendingClarify | None = None
        self._turns: dict[str, int] = {}  # answers given per scenario: rotates the variants

    def greeting(self) -> str:
        text = self.settings.greeting
        self._last = Reply(text="", decision="answer", intent=None, score=1.0, answer=text)
        return text

    def respond(self, utterance: str) -> Reply:
        match, found = self.snap.match(utterance, context=self._topic)
        pending, self._pending = self._pending, None
        if isinstance(pending, _PendingClarify):
            choice = self._pick(match, pending)
            if choice == "refuse":
                return self._handoff(utterance, match, "clarify_refused")
            if choice is not None:
                return self._answer(utterance, match, choice, found, pending.confidence)
        elif isinstance(pending, _PendingSlot):
            scenario = self.snap.scenario(pending.intent)
            entity = scenario.slots[pending.slot].entity
            if any(f.entity == entity for f in found):
                return self._answer(utterance, match, pending.intent, found, pending.confidence)
            if match.decision != "answer" or match.ranked[0].intent == pending.intent:
                if pending.retried:
                    return self._handoff(utterance, match, "slot_not_understood")
                pending.retried = True
                self._pending = pending
                prompt = self.settings.slot_retry.format(prompt=scenario.slots[pending.slot].prompt)
                return self._say(utterance, match, "clarify", pending.intent, prompt)
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
        self, utterance: str, match: Match, intent: str, found: list[Found], conf: float
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
        values = {}
        for name, slot in scenario.slots.items():
            hit = next((f for f in found if f.entity == slot.entity), None)
            if hit is None:
                self._pending = _PendingSlot(intent, name, conf)
                return self._say(utterance, match, "clarify", intent, slot.prompt, score=conf)
            values[name] = hit.value
        count = self._turns.get(intent, 0)
        self._turns[intent] = count + 1
        text = self.snap.render(scenario.answers[count % len(scenario.answers)], values, scenario)
        if scenario.followup:
            text = f"{text} {self.snap.render(scenario.followup, values, scenario)}"
        self._topic = intent
        slots = {name: value.name for name, value in values.items()}
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

"""Small stand-ins for the engines, ONLY for unit tests of the call engine around them.

The evidence that features work is the end-to-end tests with the real engines (test_e2e_*.py).
"""

from __future__ import annotations

import numpy as np

from services.asr.base import Endpointing, Hypothesis
from services.common.audio import frame_bytes
from services.dialog.base import Expect, Reason, Reply
from services.gateway.engines import Engines


class FakeStream:
    """Hears "вопрос" once 10 loud 20 ms frames arrived (however they are batched); a final on
    finish()."""

    def __init__(
        self, sample_rate: int = 16000, words: str = "вопрос", finals: bool = False
    ) -> None:
        """`finals`: the stream ends utterances itself (as Vosk does at its own endpoint)."""
        self.frame = frame_bytes(sample_rate)
        self.words, self.finals = words, finals
        self.loud = 0
        self.closed = False
        self.biased: list[tuple[str, object]] = []  # set_phrases / set_endpointing calls

    async def set_phrases(self, phrases: list[str] | None) -> None:
        self.biased.append(("phrases", phrases))

    async def set_endpointing(self, endpointing: Endpointing) -> None:
        self.biased.append(("endpointing", endpointing))

    async def feed(self, pcm: bytes) -> Hypothesis:
        for start in range(0, len(pcm), self.frame):
            frame = np.frombuffer(pcm[start : start + self.frame], "<i2")
            self.loud += int(np.abs(frame).max(initial=0) > 1000)
        if self.finals and self.loud >= 10:
            return await self.finish()
        return Hypothesis(text=self.words if self.loud >= 10 else "", final=False)

    async def finish(self) -> Hypothesis:
        text, self.loud = (self.words if self.loud >= 10 else ""), 0
        return Hypothesis(text=text, final=True)

    def expedite(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


class FakeRecognizer:
    name = "fake"

    def __init__(self, grammar: bool = True) -> None:
        self.streams: list[FakeStream] = []
        self.grammar = grammar
        self.words, self.finals = "вопрос", False  # what streams opened from now on hear

    async def open_stream(self, sample_rate, phrases=None, endpointing=None):
        self.streams.append(FakeStream(sample_rate, self.words, self.finals))
        return self.streams[-1]

    def describe(self):
        return {"engine": "fake", "grammar": self.grammar}


class FakeSynth:
    name = "fake"

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        t = np.arange(int(self.seconds * sample_rate)) / sample_rate
        return (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()

    async def stream(self, text: str, sample_rate: int):
        pcm = await self.synthesize(text, sample_rate)
        half = len(pcm) // 2 // 2 * 2
        yield pcm[:half]  # two "sentences"
        yield pcm[half:]

    def describe(self):
        return {"engine": "fake"}


# "код" asks for a 4-digit code, the way a digit slot of the real dialog does.
CODE = Expect(
    kind="digits",
    slot="code",
    dtmf_max_length=4,
    phrases=["один", "[unk]"],
    endpointing="dictation",
)


class FakeSession:
    def greeting(self) -> str:
        return "Здравствуйте"

    def expecting(self) -> Expect | None:
        return None

    def respond(self, utterance: str) -> Reply:
        if utterance == "код":
            return Reply(
                text=utterance,
                decision="clarify",
                intent="code",
                score=0.9,
                answer="Код?",
                expect=CODE,
            )
        if "оператор" in utterance:
            return Reply(
                text=utterance,
                decision="handoff",
                intent="operator",
                score=0.9,
                answer="Соединяю",
                handoff_queue="operators",
                reason=Reason.OPERATOR,
            )
        if "пока" in utterance:
            return Reply(
                text=utterance,
                decision="answer",
                intent="bye",
                score=0.9,
                answer="До свидания",
                end_call=True,
            )
        if "вопрос" in utterance or utterance.isdigit():
            return Reply(text=utterance, decision="answer", intent="faq", score=0.8, answer="Ответ")
        return Reply(
            text=utterance,
            decision="clarify",
            intent=None,
            score=0.1,
            answer="Не поняла",
            reason=Reason.NOT_UNDERSTOOD,
        )


class FakeDialog:
    def new_session(self) -> FakeSession:
        return FakeSession()

    def describe(self):
        return {"engine": "fake"}


def fake_engines(*, asr: bool = True, reply_s: float = 0.2, grammar: bool = True) -> Engines:
    recognizer = FakeRecognizer(grammar) if asr else None
    return Engines(FakeSynth(reply_s), FakeDialog(), recognizer, vad=True)

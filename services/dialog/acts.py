"""Conversation acts on every KB: «пока», «спасибо», «да», «нет», «повторите», «алло», «оператора».

The built-in layer (`acts.yaml`, Russian) is a small lemma-rule recognizer: a turn made only of
one or more acts' phrases, their companion words and fillers is an act; a turn with any other
word is a question for the KB's matcher, so «спасибо, а когда работает линия» or «оператор
банкомата забрал карту» are never taken for acts. A KB overrides an act with a scenario marked
`act: bye` (its answers, its handoff queue) and extends it (its examples become the act's
phrases); scenarios with `action: repeat` / `action: end_call`, or whose examples are mostly one
act, are linked to that act by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from services.dialog.base import Act
from services.dialog.normalize import Normalizer, lemma, words
from services.dialog.schema import Scenario

BUILTIN = Path(__file__).with_name("acts.yaml")
# When one turn names several acts, the first of these wins: «спасибо, до свидания» is a
# goodbye, «нет, спасибо» a no, «алло, оператора» a request for a person.
PRIORITY = (Act.OPERATOR, Act.BYE, Act.REPEAT, Act.HELLO, Act.NO, Act.THANKS, Act.YES)
# Acts whose words never carry a question's meaning: dropped from a question before matching
# it again («оператор банкомата забрал карту» → «банкомата забрал карту»). «нет», «пока»,
# «что», «всё» can («у меня нет света»), so they stay.
STRIPPED = frozenset({Act.THANKS, Act.HELLO, Act.OPERATOR})
LEADING = frozenset({Act.YES, Act.NO})  # stripped only before the question's first word
WORD_CACHE = 50_000  # words the recognizer remembers
LINK_SHARE = 0.6  # a scenario whose examples are this often one act's phrases is that act
# Misheard or misspelt act words («апиратора», «спасиба», «павтарите», «нэт») are compared by
# how they sound: unstressed о/а and е/и merge, doubled letters and soft signs go. Only an exact
# sound match counts: near ones turned «работа» into «робот».
_SOUND = str.maketrans({"о": "а", "е": "и", "э": "и", "ы": "и", "я": "а", "ю": "у", "й": "и"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ActSpec(_Strict):
    phrases: list[str] = Field(min_length=1)
    with_: list[str] = Field(default_factory=list, alias="with")
    asks: list[str] = Field(default_factory=list)  # companions that make it a request
    answers: list[str] = Field(default_factory=list)


class ActTexts(_Strict):
    yes_after_offer: str
    clarify_again: str
    hello_open: str


class BuiltinActs(_Strict):
    neutral: list[str]
    acts: dict[Act, ActSpec]
    texts: ActTexts


@cache
def builtin() -> BuiltinActs:
    """The shipped Russian layer (read once; a broken file is a bug caught by the tests)."""
    return BuiltinActs.model_validate(yaml.safe_load(BUILTIN.read_text(encoding="utf-8")))


def _lemmas(text: str) -> tuple[str, ...]:
    return tuple(lemma(w)[0] for w in words(text))


def _sound(word: str) -> str:
    key = word.translate(_SOUND).replace("ь", "").replace("ъ", "")
    return "".join(ch for n, ch in enumerate(key) if n == 0 or key[n - 1] != ch)


@dataclass(frozen=True)
class Heard:
    """What the act recognizer made of one caller turn."""

    acts: frozenset[Act]  # acts named in the turn
    asked: frozenset[Act]  # of those, the ones said as a request («соедините с …»)
    content: tuple[str, ...]  # words that are neither an act nor a filler
    rest: str  # without fillers, thanks, hello, operator, an opening yes/no: the question, if any

    @property
    def only_acts(self) -> bool:
        return bool(self.acts) and not self.content

    def primary(self, offer: bool = False) -> Act:
        """The act a turn of several means; after an offer («Могу ещё чем-нибудь помочь?»)
        «да, спасибо» is a yes."""
        if offer and Act.YES in self.acts and self.acts <= {Act.YES, Act.THANKS}:
            return Act.YES
        return next(a for a in PRIORITY if a in self.acts)


class ActRecognizer:
    """Greedy longest-first cover of a turn's lemmas by act phrases (and filler phrases)."""

    def __init__(
        self,
        phrases: Iterable[tuple[Act | None, str]],
        companions: Mapping[Act, Iterable[str]],
        asks: Mapping[Act, Iterable[str]],
        fillers: Iterable[str] = (),
    ):
        """`phrases`: (act, text) in precedence order, act None for a filler phrase;
        `companions`: words going with an act's phrases; `asks`: those making it a request."""
        self._phrases: dict[tuple[str, ...], Act | None] = {}
        vocabulary = set()
        for act, text in phrases:
            if key := _lemmas(text):
                self._phrases.setdefault(key, act)
                vocabulary.update(words(text))
        self._asks = {act: {lem for t in ts for lem in _lemmas(t)} for act, ts in asks.items()}
        self._with = {
            act: {lem for text in texts for lem in _lemmas(text)} | self._asks.get(act, set())
            for act, texts in companions.items()
        }
        vocabulary.update(
            w for texts in (*companions.values(), *asks.values()) for t in texts for w in words(t)
        )
        self._known = {lemma(w)[0] for w in vocabulary}
        # a caller's word, or its lemma, sounding like an act word's form or lemma
        self._sounds = {_sound(w): lemma(w)[0] for w in sorted(vocabulary | self._known)}
        self._longest = max(len(k) for k in self._phrases)
        # What the matcher's normalizer drops (hesitations, fillers, pronouns, particles) is
        # no question either.
        self._noise = Normalizer(None, fillers)
        # per word (lemma, noise?): a KB's examples and callers repeat words; a plain dict, as
        # the recognizer travels pickled from the reload worker
        self._seen: dict[str, tuple[str, bool]] = {}

    def _word(self, word: str) -> tuple[str, bool]:
        if (known := self._seen.get(word)) is None:
            if len(self._seen) >= WORD_CACHE:
                self._seen.clear()
            known = self._seen[word] = (self._lemma(word), not self._noise.tokens(word))
        return known

    def _lemma(self, word: str) -> str:
        """The word's lemma, or the act word it (or its lemma) sounds exactly like."""
        form = lemma(word)[0]
        if form in self._known or not word.isalpha():
            return form
        return self._sounds.get(_sound(word)) or self._sounds.get(_sound(form)) or form

    def __call__(self, text: str) -> Heard:
        surface = words(text)
        seen = [self._word(w) for w in surface]
        lems = [lem for lem, _ in seen]
        kinds: list[Act | bool | None] = [False] * len(lems)  # False: not in a phrase
        i = 0
        while i < len(lems):
            for n in range(min(self._longest, len(lems) - i), 0, -1):
                key = tuple(lems[i : i + n])
                if key in self._phrases:
                    kinds[i : i + n] = [self._phrases[key]] * n
                    i += n
                    break
            else:
                i += 1
        acts = frozenset(k for k in kinds if isinstance(k, Act))
        companions = set().union(*(self._with.get(a, set()) for a in acts))
        said = [
            kind is False and lem not in companions and not noise
            for (lem, noise), kind in zip(seen, kinds, strict=True)
        ]
        content = tuple(w for w, is_content in zip(surface, said, strict=True) if is_content)
        # «да», «нет» opening a question go too: «нет подождите как сменить пин код»
        opening = next(
            (
                n
                for n, k in enumerate(kinds)
                if said[n] or (isinstance(k, Act) and k not in LEADING)
            ),
            len(kinds),
        )
        rest = " ".join(
            w
            for n, (w, kind) in enumerate(zip(surface, kinds, strict=True))
            if kind is not None and kind not in STRIPPED and not (n < opening and kind in LEADING)
        )
        return Heard(acts, self._requests(surface, lems, kinds, said), content, rest)

    def _requests(
        self,
        surface: list[str],
        lems: list[str],
        kinds: list[Act | bool | None],
        said: list[bool],
    ) -> frozenset[Act]:
        """Acts with a request word next to them, nothing but act words and fillers between:
        «соедините с сотрудником банка», «оператора позовите», not «хочу помогать людям». After
        the act only a verb asks: «…ушли чужому человеку можно ли отменить» is no request."""
        asked = set()
        for i, kind in enumerate(kinds):
            if not isinstance(kind, Act) or kind not in self._asks or kind in asked:
                continue
            for step in (-1, 1):
                j = i + step
                while 0 <= j < len(lems) and not said[j]:
                    verb = lemma(surface[j])[1] in ("VERB", "INFN")
                    if lems[j] in self._asks[kind] and (step < 0 or verb):
                        asked.add(kind)
                    j += step
        return frozenset(asked)


@dataclass
class KBActs:
    """The acts of one KB: the built-in layer with the KB's overrides and extra phrases."""

    recognize: ActRecognizer
    linked: dict[str, Act]  # scenario id -> the act it is
    override: dict[Act, Scenario] = field(default_factory=dict)  # the KB's own version of an act
    texts: ActTexts = field(default_factory=lambda: builtin().texts)

    def answers(self, act: Act, scenario: Scenario | None = None) -> list[str]:
        """The scenario's answers, else the KB's override's, else the built-in ones."""
        for source in (scenario, self.override.get(act)):
            if source is not None and source.answers:
                return source.answers
        return builtin().acts[act].answers

    def source(self, act: Act, scenario: Scenario | None = None) -> Scenario | None:
        return scenario or self.override.get(act)


def _vote(recognize: ActRecognizer, examples: list[str]) -> Act | None:
    """The act most of a scenario's examples are (LINK_SHARE of them), if any."""
    votes: dict[Act, int] = {}
    spare = len(examples) - LINK_SHARE * len(examples)  # examples that may be no act at all
    for text in examples:
        heard = recognize(text)
        if heard.only_acts:
            act = heard.primary()
            votes[act] = votes.get(act, 0) + 1
        else:
            spare -= 1
            if spare < 0:  # most scenarios: stop once the share is out of reach
                return None
    best = max(votes, key=lambda a: votes[a], default=None)
    return best if best is not None and votes[best] >= LINK_SHARE * len(examples) else None


def link(scenarios: Mapping[str, Scenario], fillers: Iterable[str] = ()) -> KBActs:
    """Which KB scenarios are acts (declared `act:`, `action:`, or by their examples)."""
    base = builtin()
    fillers = list(fillers)
    phrases: list[tuple[Act | None, str]] = [
        *((act, text) for act, spec in base.acts.items() for text in spec.phrases),
        *((None, text) for text in base.neutral),
    ]
    companions = {act: spec.with_ for act, spec in base.acts.items()}
    asks = {act: spec.asks for act, spec in base.acts.items()}
    plain = ActRecognizer(phrases, companions, asks, fillers)
    linked: dict[str, Act] = {}
    override: dict[Act, Scenario] = {}
    for sc in scenarios.values():  # declared first: they win over a guess
        act = sc.act or {"repeat": Act.REPEAT, "end_call": Act.BYE}.get(sc.action)
        if act is not None:
            linked[sc.id] = act
            if sc.act is not None or act not in override:
                override[act] = sc
    for sc in scenarios.values():
        if sc.id in linked or not sc.examples:
            continue
        act = _vote(plain, sc.examples)
        # A person is asked for only by a scenario that hands off; no other act does.
        if act is not None and (sc.handoff is not None) == (act is Act.OPERATOR):
            linked[sc.id] = act
            override.setdefault(act, sc)
    # The KB's own examples of an act come first: where they say otherwise, the KB is right.
    own = [(act, text) for sid, act in linked.items() for text in scenarios[sid].examples]
    recognizer = ActRecognizer([*own, *phrases], companions, asks, fillers)
    return KBActs(recognizer, linked, override)

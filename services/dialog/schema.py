"""The knowledge base format: what an editor may write in a YAML file of `knowledge_base/`.

Every YAML file of the directory is one `KBFile`; any file may hold scenarios, shared synonym
dictionaries, entity lists and (in one file only) the KB-wide settings. `voicebot kb schema`
exports this model as JSON Schema for editors' tooling.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.dialog.base import Act


class _Strict(BaseModel):
    # Unknown keys are errors: a misspelt key must never be silently ignored.
    model_config = ConfigDict(extra="forbid")


class Handoff(_Strict):
    """Transfer the call to people after (or instead of) saying the answer."""

    queue: str = Field(description="queue the call goes to, e.g. `operators`, `complaints`")
    skill: str | None = Field(None, description="operator skill required, e.g. `covid`")


class Digits(_Strict):
    """A number the caller keys in (DTMF) or says: a payer code, a meter reading."""

    min_length: int = Field(1, ge=1, le=32, description="fewest digits accepted")
    max_length: int = Field(ge=1, le=32, description="most digits; keying this many ends the entry")
    say: Literal["digits", "number"] = Field(
        "number",
        description="how the answer says it: `digits` one by one (codes), `number` as a number",
    )


class Slot(_Strict):
    """A value the answer needs from the caller: from an entity list, or digits."""

    entity: str | None = Field(None, description="name of an entity list (`entities:` in any file)")
    digits: Digits | None = Field(
        None, description="instead of `entity`: digits keyed in or said, e.g. a payer code"
    )
    prompt: str = Field(
        description="question asked when the caller did not say it, e.g. «В каком регионе?»"
    )


class Scenario(_Strict):
    """One question the hotline answers."""

    id: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="unique id, latin lower case: `line_hours`"
    )
    title: str = Field(
        min_length=1, description="what the scenario is about, for editors and reports"
    )
    topic: str | None = Field(
        None, description="how the bot names it in «Вы имеете в виду … или …?»; default: title"
    )
    examples: list[str] = Field(
        default_factory=list, description="caller questions, the more natural the better"
    )
    keywords: dict[str, Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=dict,
        description="word or phrase → weight 0..1: how strongly it alone points to this scenario",
    )
    answers: list[str] = Field(
        default_factory=list, description="answer variants; the bot rotates them so repeats differ"
    )
    followup: str | None = Field(
        None, description="question asked after the answer, e.g. «Подсказать что-то ещё?»"
    )
    handoff: Handoff | None = Field(
        None, description="transfer the call to a queue after the answer"
    )
    action: Literal["answer", "repeat", "end_call"] = Field(
        "answer",
        description="`repeat`: say the last answer again; `end_call`: hang up after the answer",
    )
    act: Act | None = Field(
        None,
        description="this scenario is the KB's own version of a built-in conversation act "
        "(bye, thanks, yes, no, repeat, hello, operator): its answers and handoff queue replace "
        "the built-in ones, its examples are added to the act's phrases",
    )
    slots: dict[str, Slot] = Field(
        default_factory=dict, description="values used as {name} in answers"
    )
    in_context: list[str] = Field(
        default_factory=list,
        description="short follow-ups understood right after this answer: «а в выходные?»",
    )
    menu: dict[str, str] = Field(
        default_factory=dict,
        description="key 1..9 → id of the scenario it opens; the bot reads the options "
        "after the answer and the caller presses or says the number",
    )
    tests: list[str] = Field(
        default_factory=list, description="phrases `voicebot kb test` checks match this scenario"
    )

    @field_validator("act", mode="before")
    @classmethod
    def _yes_no_as_words(cls, value: object) -> object:
        # YAML 1.1 reads a bare `act: yes` / `act: no` as true / false.
        return {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("menu", mode="before")
    @classmethod
    def _keys_as_text(cls, value: object) -> object:
        # YAML reads `1: heating` with an integer key; a key is what the caller presses.
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @property
    def display_topic(self) -> str:
        return self.topic or self.title


class EntityValue(_Strict):
    name: str = Field(
        min_length=1, description="canonical name, said back to the caller: «Тверская область»"
    )
    synonyms: list[str] = Field(
        default_factory=list, description="other ways callers say it: «Тверь», «Подмосковье»"
    )
    attrs: dict[str, str] = Field(
        default_factory=dict, description="facts used in answers as {slot.attr}, e.g. phones"
    )


class EntityList(_Strict):
    defaults: dict[str, str] = Field(
        default_factory=dict, description="attrs for values that lack their own"
    )
    values: list[EntityValue] = Field(min_length=1)


class MatchingSettings(_Strict):
    """How sure the bot must be. Default: fitted on this KB at every load (cross-validation over
    its examples and tests, services/dialog/README.md); a value here overrides the fitted one."""

    answer_threshold: float | None = Field(
        None, ge=0, le=1, description="probability needed to answer; default: fitted on the KB"
    )
    clarify_threshold: float | None = Field(
        None,
        ge=0,
        le=2,
        description="best two probabilities summed needed to ask «… или …?»; default: fitted",
    )


class Settings(_Strict):
    greeting: str = "Здравствуйте! Это справочная линия. Задайте ваш вопрос."
    clarify: str = Field(
        "Вы имеете в виду {first} или {second}?", description="{first}, {second}: scenario topics"
    )
    not_understood: str = "Извините, я не расслышал. Повторите, пожалуйста, другими словами."
    handoff: str = Field(
        "Соединяю вас с оператором, оставайтесь на линии.",
        description="said when the bot is not sure",
    )
    handoff_queue: str = "operators"
    nothing_to_repeat: str = "Я ещё ничего не сказал. Задайте ваш вопрос."
    slot_retry: str = Field(
        "Не расслышал. {prompt}", description="{prompt}: the slot question again"
    )
    menu_option: str = Field(
        "{topic} — нажмите {key}",
        description="one option of a key menu; {topic}: the target's topic, {key}: its key",
    )
    menu_retry: str = Field(
        "В меню нет такого номера. {options}",
        description="said once for a key not in the menu; {options}: the options again",
    )
    main_menu: str | None = Field(
        None,
        description="id of a scenario with a `menu`: keys pressed while no other menu is "
        "open pick from it (any other key reads it)",
    )
    fillers: list[str] = Field(
        default_factory=list, description="extra filler words or phrases removed before matching"
    )
    matching: MatchingSettings = Field(default_factory=MatchingSettings)


class KBFile(_Strict):
    """One YAML file of the knowledge base directory."""

    settings: Settings | None = None
    scenarios: list[Scenario] = Field(default_factory=list)
    synonyms: dict[str, list[str]] = Field(
        default_factory=dict,
        description="canonical word → variants callers say; shared by all scenarios",
    )
    entities: dict[str, EntityList] = Field(
        default_factory=dict, description="entity lists for slots"
    )

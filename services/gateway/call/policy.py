"""How the bot takes turns: timeouts, limits and the words it says on its own (VOICEBOT_CALL_*)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HandoffTarget(StrEnum):
    """Where the bot hands a caller who needs a person."""

    GATEWAY = "gateway"  # the gateway's own queue: hold, announcements, callbacks, operator API
    DIALPLAN = "dialplan"  # Asterisk's Queue() after AudioSocket() returns (SIP operators);
    # a WebSocket caller hears the transfer notice and is hung up


class CallPolicy(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBOT_CALL_", extra="ignore")

    # Endpointing: caller's turn ends after this much silence following speech (VAD).
    endpoint_silence_ms: int = 500
    # Barge-in: caller speech this long during bot playback pauses it at once; speech that
    # lasts `barge_in_confirm_ms` stops it for good, while a short "угу" or noise followed by
    # `barge_in_resume_ms` of silence lets the bot carry on where it paused.
    barge_in: bool = True
    barge_in_min_speech_ms: int = 120
    barge_in_confirm_ms: int = 400
    barge_in_resume_ms: int = 250
    # Speech probability needed while the bot is quiet / while it talks (echo makes it noisier).
    vad_threshold: float = 0.5
    vad_threshold_speaking: float = 0.7
    # Inbound peaks above this share of the bot's own recent peak are the caller, not echo
    # (a phone line's echo return loss is ~20 dB or more; 0.15 is -16.5 dB).
    echo_ratio: float = 0.15
    echo_tail_ms: int = 300
    # Silence: reprompt after this many seconds without speech, at most `max_reprompts` times,
    # then `silence_action` (transfer | goodbye).
    silence_timeout_s: float = 8.0
    max_reprompts: int = 2
    silence_action: str = "transfer"
    # No-match: the dialog asks to rephrase a turn it did not understand (Reply.reason
    # NOT_UNDERSTOOD) and never hands off for that itself; the `max_nomatch`-th such turn in a
    # row goes to an operator instead (2: a rephrase prompt, then the transfer).
    max_nomatch: int = Field(2, ge=1)
    # DTMF: these keys reach an operator at any time; other digits form one entry, closed by
    # "#" or by a pause of `dtmf_interdigit_s`.
    transfer_digits: str = "0*"
    dtmf_interdigit_s: float = 1.5
    operator_queue: str = "operators"
    handoff_to: HandoffTarget = HandoffTarget.GATEWAY

    # Stereo WAV per call (caller left, bot right) in this folder; unset: no recording.
    recordings_dir: Path | None = None

    reprompt_text: str = "Вы меня слышите? Задайте, пожалуйста, ваш вопрос."
    transfer_text: str = "Соединяю вас с оператором. Пожалуйста, оставайтесь на линии."
    goodbye_text: str = "Не слышу вас. Перезвоните, пожалуйста. До свидания!"
    # Waiting in the gateway's queue: a callback instead (the queue's announcement offers it).
    callback_confirm_text: str = (
        "Мы перезвоним вам на номер {number}. Если номер верный, нажмите 1 или скажите «да». "
        "Чтобы указать другой, продиктуйте его или наберите и нажмите решётку. "
        "Чтобы остаться в очереди, нажмите звёздочку."
    )
    callback_number_text: str = (
        "Продиктуйте номер телефона, по которому вам перезвонить, "
        "или наберите его и нажмите решётку. "
        "Чтобы остаться в очереди, нажмите звёздочку."
    )
    callback_done_text: str = "Спасибо! Оператор вам перезвонит. До свидания!"
    hold_resume_text: str = "Хорошо, оставайтесь на линии."
    back_to_bot_text: str = "Я снова с вами. Чем ещё могу помочь?"

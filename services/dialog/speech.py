"""Answer text → what TTS should say: phone numbers read in groups, like people say them.

Editors write numbers as on paper («+7 495 777-77-77», «8-800-2000-112»); TTS would read
«7777777» as millions. Each group is spoken on its own: «плюс семь, четыреста девяносто пять,
семьсот семьдесят семь, семьдесят семь, семьдесят семь».
"""

from __future__ import annotations

import re

from num2words import num2words

# A phone: optional +, digit groups joined by spaces, hyphens or brackets, 7+ digits in all.
_PHONE = re.compile(r"\+?\d[\d\s()\-]{5,}\d")


def _group(digits: str) -> str:
    if digits.startswith("0") and len(digits) > 1:  # «083», «0004»: digit by digit
        return " ".join(num2words(int(d), lang="ru") for d in digits)
    if len(digits) == 4 and not digits.endswith("000"):  # «8722» → «восемьдесят семь, двадцать два»
        return f"{_group(digits[:2])}, {_group(digits[2:])}"
    return num2words(int(digits), lang="ru")


def _speak_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    groups = re.findall(r"\d+", text)
    if sum(len(g) for g in groups) < 7:
        return text
    spoken = ", ".join(_group(g) for g in groups)
    return ("плюс " if text.startswith("+") else "") + spoken


def speakable(text: str) -> str:
    """The text with every phone number spelled out in groups (other text unchanged)."""
    return _PHONE.sub(_speak_phone, text)

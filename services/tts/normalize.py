"""Russian text normalization: what a hotline answer says, written as words a TTS engine reads.

Numbers agree with the preposition before them (case) and the noun after them (gender); phone
numbers are read in groups; times, ranges, dates, abbreviations and Latin words are spelled out.
`add_stress` then marks stress and ё (silero-stress) the way Silero reads them: `+` before the
stressed vowel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from num2words import num2words

# --- grammar helpers

# Preposition (or fixed phrase) before a number -> num2words case of the number.
CASE_AFTER = {
    **dict.fromkeys(
        [
            "с",
            "со",
            "до",
            "от",
            "из",
            "после",
            "около",
            "для",
            "без",
            "у",
            "более",
            "менее",
            "свыше",
            "старше",
            "младше",
            "больше",
            "меньше",
            "течение",
            "кроме",
            "вместо",
        ],
        "g",
    ),
    **dict.fromkeys(["к", "ко", "согласно", "благодаря"], "d"),
    **dict.fromkeys(["о", "об", "при"], "p"),
}
PYMORPHY_CASE = {"n": "nomn", "g": "gent", "d": "datv", "a": "accs", "i": "ablt", "p": "loct"}
GENDER = {"masc": "m", "femn": "f", "neut": "n"}
MONTHS = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]


@lru_cache(maxsize=1)
def _morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


def _noun(word: str) -> Any | None:
    """The most likely noun reading of `word`, if it is a noun."""
    for parse in _morph().parse(word):
        if parse.tag.POS == "NOUN":
            return parse
    return None


def _gender_of(word: str) -> str:
    noun = _noun(word)
    if noun is None:
        return "m"
    lemma = noun.normalized
    return GENDER.get(str(lemma.tag.gender), "m")


def cardinal(n: int | float, case: str = "n", gender: str = "m") -> str:
    return str(num2words(n, lang="ru", case=case, gender=gender))


def ordinal(n: int, case: str = "n", gender: str = "m") -> str:
    return str(num2words(n, lang="ru", to="ordinal", case=case, gender=gender))


def agree(lemma: str, n: int, case: str = "n") -> str:
    """`lemma` in the form a count of `n` needs: (два) часа, (пять) часов, (с двух) часов."""
    parse = _morph().parse(lemma)[0]
    if case == "n":
        return str(parse.make_agree_with_number(n).word)
    number = "sing" if n % 10 == 1 and n % 100 != 11 else "plur"
    form = parse.inflect({PYMORPHY_CASE[case], number})
    return str(form.word) if form else lemma


# --- context of a match

_WORD = re.compile(r"[А-Яа-яЁёA-Za-z]+")


def _prev_word(text: str, start: int) -> str:
    words = _WORD.findall(text[max(0, start - 40) : start])
    return words[-1].lower() if words else ""


def _next_word(text: str, end: int) -> str:
    match = _WORD.match(text[end:].lstrip(" \u00a0"))
    return match.group(0).lower() if match else ""


def _case_before(text: str, start: int) -> str:
    return CASE_AFTER.get(_prev_word(text, start), "n")


def _apply(text: str, pattern: re.Pattern[str], fn: Callable[[re.Match[str], str], str]) -> str:
    """re.sub where the replacement also sees the whole text (for the words around a match)."""
    return pattern.sub(lambda m: fn(m, m.string), text)


# --- phone numbers


def _digit_groups(digits: str) -> list[str]:
    """How a run of digits without separators is read: 7 -> 3-2-2, 10 -> 3-3-2-2, 4 -> 2-2."""
    if len(digits) == 11 and digits[0] in "78":
        return [digits[0], *_digit_groups(digits[1:])]
    sizes = {
        1: [1],
        2: [2],
        3: [3],
        4: [2, 2],
        5: [3, 2],
        6: [2, 2, 2],
        7: [3, 2, 2],
        10: [3, 3, 2, 2],
    }.get(len(digits))
    if sizes is None:
        return list(digits)
    out, pos = [], 0
    for size in sizes:
        out.append(digits[pos : pos + size])
        pos += size
    return out


def _read_group(group: str) -> str:
    """One phone group: leading zeros are read as «ноль», the rest as a number; 8182 -> 81 82."""
    if len(group) == 4 and not group.endswith("000"):
        return ", ".join(_read_group(g) for g in (group[:2], group[2:]))
    zeros = len(group) - len(group.lstrip("0"))
    words = ["ноль"] * zeros
    if group.lstrip("0"):
        words.append(cardinal(int(group)))
    return " ".join(words)


def telephone(number: str) -> str:
    """«+7 495 777-77-77» -> «плюс семь, четыреста девяносто пять, семьсот семьдесят семь, …»."""
    plus = number.strip().startswith("+")
    groups = [g for g in re.split(r"\D+", number) if g]
    if len(groups) == 1:
        groups = _digit_groups(groups[0])
    words = [_read_group(g) for g in groups]
    if plus:
        words[0] = "плюс " + words[0]
    return ", ".join(words)


PHONE = re.compile(
    r"(?<![\w+])\d{1,4}(?:-\d{1,4}){2,}(?![\w-])"
    r"|(?<![\w+])8\s?\(\d{3,5}\)\s?\d{1,3}(?:-\d{2,3}){1,2}"
    r"|(?<![\w+])8[\s-]\d{3}[\s-]\d{3}[\s-]\d{2}[\s-]\d{2}(?!\d)"
    r"|(?<![\w+])\+\d{1,3}[\s-]?\(?\d{3,5}\)?[\s-]?\d{2,4}(?:[\s-]?\d{2,4})*"
    r"|(?<![\w+])8[\s-]\(?800\)?(?:[\s-]\d{2,4})*(?![\w-])"
    r"|(?<![\w+])[78]\d{10}(?!\w)"
)
PHONE_CUE = re.compile(
    r"(?:номер|телефон|тел\.|звон|набер|набир|линия|линии)\w*[^.\d]{0,25}$", re.IGNORECASE
)
CUED_NUMBER = re.compile(r"(?<![\d,.:])\d{3,11}(?![\d:]|[.,]\d)")


def _phones(text: str) -> str:
    text = PHONE.sub(lambda m: telephone(m.group(0)), text)

    def cued(m: re.Match[str], whole: str) -> str:
        if PHONE_CUE.search(whole[max(0, m.start() - 40) : m.start()]):
            return telephone(m.group(0))
        return m.group(0)

    return _apply(text, CUED_NUMBER, cued)


# --- times, dates, ranges

TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d"
# «с 10-00 до 17-00, перерыв с 12-00 до 12-45»: times written with a dash (after phones are read).
DASH_TIME = re.compile(r"\b([01]?\d|2[0-3])-00\b")
DASH_TIME_AFTER = re.compile(r"\b(с|до)\s+([01]?\d|2[0-3])-(15|30|45)\b")
TIME_RANGE = re.compile(rf"(?:\b(?:с|c)\s+)?\b({TIME})\s*(?:[-–—]|\s+до\s+)\s*({TIME})\b")
SINGLE_TIME = re.compile(rf"\b{TIME}\b")


def time_words(value: str, case: str = "n", hours_word: bool = True) -> str:
    """«9:00» -> «девять часов», «9:05» -> «девять ноль пять»; `case` from the preposition."""
    hours, minutes = (int(x) for x in value.split(":"))
    spoken_hours = cardinal(hours, case) if hours else "ноль"
    if minutes == 0:
        if not hours_word:
            return spoken_hours
        return f"{spoken_hours} {agree('час', hours, case)}"
    spoken_minutes = cardinal(minutes, case)
    if minutes < 10:
        spoken_minutes = "ноль " + spoken_minutes
    return f"{spoken_hours} {spoken_minutes}"


def _time_range(m: re.Match[str], _: str) -> str:
    start, end = m.group(1), m.group(2)
    both_whole = start.endswith(":00") and end.endswith(":00")
    return f"с {time_words(start, 'g', hours_word=not both_whole)} до {time_words(end, 'g')}"


def _single_time(m: re.Match[str], whole: str) -> str:
    return time_words(m.group(0), _case_before(whole, m.start()))


DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})\b")
DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:-?(?:е|го|му|м))?\s+({'|'.join(MONTHS)})")
YEAR = re.compile(r"\b(\d{4})\s*(?:-?(?:й|м|го))?\s*(г\.|года|году|год|гг\.)")


def date_words(day: int, month: int, year: int | None, case: str = "n") -> str:
    """«01.09.2024» -> «первое сентября две тысячи двадцать четвёртого года»."""
    words = f"{ordinal(day, case, 'n')} {MONTHS[month - 1]}"
    if year is not None:
        words += f" {ordinal(year, 'g')} года"
    return words


def _date(m: re.Match[str], whole: str) -> str:
    day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group(0)
    year = year + 2000 if year < 100 else year
    return date_words(day, month, year, _case_before(whole, m.start()))


def _day_month(m: re.Match[str], whole: str) -> str:
    case = _case_before(whole, m.start())
    return f"{ordinal(int(m.group(1)), case, 'n')} {m.group(2)}"


YEAR_FORMS = {"год": "n", "года": "g", "году": "p", "гг.": "g"}


def _year(m: re.Match[str], whole: str) -> str:
    word = m.group(2)
    case = YEAR_FORMS.get(word)
    if case is None:  # «г.»: the form follows the preposition
        prev = _prev_word(whole, m.start())
        in_date = prev in MONTHS  # «1 сентября 2024 г.»
        case = "g" if in_date else "p" if prev in ("в", "во") else CASE_AFTER.get(prev, "n")
    noun = {"n": "год", "g": "года", "p": "году", "d": "году"}[case]
    return f"{ordinal(int(m.group(1)), case)} {noun}"


NUMBER_RANGE = re.compile(
    r"(?<![\d:.,])(\d+)\s*[-–—]\s*(\d+)(?![\d:]|[.,]\d)(?:(\s+)([А-Яа-яЁё]+))?"
)


def _number_range(m: re.Match[str], whole: str) -> str:
    """«5–7 дней» -> «от пяти до семи дней»; «1-2 дня» -> «от одного до двух дней»."""
    lead = "" if _prev_word(whole, m.start()) in ("от", "с", "со") else "от "
    word = m.group(4) or ""
    gender = _gender_of(word) if word else "m"
    noun = _noun(word) if word else None
    plural = noun.inflect({"gent", "plur"}) if noun is not None else None
    if plural is not None:
        word = plural.word
    low, high = cardinal(int(m.group(1)), "g", gender), cardinal(int(m.group(2)), "g", gender)
    return f"{lead}{low} до {high}{m.group(3) or ''}{word}"


# --- plain numbers

ORDINAL_SUFFIX = re.compile(r"\b(\d+)-(й|ый|ий|я|ая|е|ое|го|ого|му|ому|м|ом|х|ых|ю|ую|ой)\b")
SUFFIX_FORM = {
    "й": ("n", "m"),
    "ый": ("n", "m"),
    "ий": ("n", "m"),
    "я": ("n", "f"),
    "ая": ("n", "f"),
    "е": ("n", "n"),
    "ое": ("n", "n"),
    "го": ("g", "m"),
    "ого": ("g", "m"),
    "му": ("d", "m"),
    "ому": ("d", "m"),
    "м": ("p", "m"),
    "ом": ("p", "m"),
    "ю": ("a", "f"),
    "ую": ("a", "f"),
    "ой": ("g", "f"),
}


def _ordinal_suffix(m: re.Match[str], _: str) -> str:
    n, suffix = int(m.group(1)), m.group(2)
    if suffix == "х":  # «в 2-х случаях»: a cardinal in the genitive/prepositional
        return cardinal(n, "g")
    if suffix == "ых":
        return str(num2words(n, lang="ru", to="ordinal", case="g", plural=True))
    case, gender = SUFFIX_FORM[suffix]
    return ordinal(n, case, gender)


GROUPED = re.compile(r"(?<![\d,.])\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d,.])")
DECIMAL = re.compile(r"(?<![\d.,])(\d+)[,.](\d+)(?![\d.,]|\.\d)")
UNIT = re.compile(
    r"(?<![\d,.])(\d+)\s*(%|₽|\$|€|руб\.?|коп\.?|мин\.?|сек\.?|ч\.|км|кг|млн|млрд|тыс\.?)(?!\w)"
)
UNIT_LEMMA = {
    "%": "процент",
    "₽": "рубль",
    "$": "доллар",
    "€": "евро",
    "руб": "рубль",
    "коп": "копейка",
    "мин": "минута",
    "сек": "секунда",
    "ч": "час",
    "км": "километр",
    "кг": "килограмм",
    "млн": "миллион",
    "млрд": "миллиард",
    "тыс": "тысяча",
}
NUMBER = re.compile(r"(?<![\w+])\d+(?!\w)")


def _unit(m: re.Match[str], whole: str) -> str:
    n, lemma = int(m.group(1)), UNIT_LEMMA[m.group(2).rstrip(".")]
    case = _case_before(whole, m.start())
    gender = GENDER.get(str(_morph().parse(lemma)[0].tag.gender), "m")
    return _keep_final_dot(m, whole, f"{cardinal(n, case, gender)} {agree(lemma, n, case)}")


def _decimal(m: re.Match[str], whole: str) -> str:
    return cardinal(float(f"{m.group(1)}.{m.group(2)}"), _case_before(whole, m.start()))


def _number(m: re.Match[str], whole: str) -> str:
    n = int(m.group(0))
    if len(m.group(0)) > 1 and m.group(0).startswith("0"):
        return _read_group(m.group(0))
    gender = _gender_of(_next_word(whole, m.end())) if n % 10 in (1, 2) else "m"
    return cardinal(n, _case_before(whole, m.start()), gender)


# --- abbreviations and Latin

LETTERS = {
    "а": "а",
    "б": "бэ",
    "в": "вэ",
    "г": "гэ",
    "д": "дэ",
    "е": "е",
    "ё": "ё",
    "ж": "жэ",
    "з": "зэ",
    "и": "и",
    "й": "и краткое",
    "к": "ка",
    "л": "эль",
    "м": "эм",
    "н": "эн",
    "о": "о",
    "п": "пэ",
    "р": "эр",
    "с": "эс",
    "т": "тэ",
    "у": "у",
    "ф": "эф",
    "х": "ха",
    "ц": "цэ",
    "ч": "че",
    "ш": "ша",
    "щ": "ща",
    "ъ": "твёрдый знак",
    "ы": "ы",
    "ь": "мягкий знак",
    "э": "э",
    "ю": "ю",
    "я": "я",
}
LATIN_LETTERS = {
    "a": "эй",
    "b": "би",
    "c": "си",
    "d": "ди",
    "e": "и",
    "f": "эф",
    "g": "джи",
    "h": "эйч",
    "i": "ай",
    "j": "джей",
    "k": "кей",
    "l": "эль",
    "m": "эм",
    "n": "эн",
    "o": "оу",
    "p": "пи",
    "q": "кью",
    "r": "ар",
    "s": "эс",
    "t": "ти",
    "u": "ю",
    "v": "ви",
    "w": "дабл ю",
    "x": "икс",
    "y": "уай",
    "z": "зэт",
}
# Abbreviations read as words, not letter by letter.
WORD_ABBREVIATIONS = {
    "снилс": "сн+илс",
    "вич": "в+ич",
    "гост": "г+ост",
    "вуз": "в+уз",
    "мид": "м+ид",
    "загс": "з+агс",
    "осаго": "ос+аго",
    "каско": "к+аско",
    "нии": "ни+и",
    "тасс": "т+асс",
    "мфц": "эм эф ц+э",
    "сша": "сэ шэ +а",
    "гибдд": "гэ и бэ дэ д+э",
    "ооо": "о о +о",
    "егэ": "е г+э",
    "огэ": "о г+э",
}
# Latin words as a Russian speaker says them.
LATIN_WORDS = {
    "covid": "к+овид",
    "coca-cola": "к+ока-к+ола",
    "hottelecom": "хотт+елеком",
    "net": "нет",
    "com": "ком",
    "ru": "ру",
    "www": "вэ вэ вэ",
    "online": "онл+айн",
    "email": "и-м+ейл",
    "e-mail": "и-м+ейл",
    "wi-fi": "вай-ф+ай",
    "whatsapp": "в+атсап",
    "telegram": "телегр+ам",
    "viber": "в+айбер",
    "skype": "ск+айп",
    "google": "г+угл",
    "yandex": "+яндекс",
    "iphone": "айф+он",
    "android": "андр+оид",
    "call": "колл",
    "center": "ц+ентр",
    "voip": "в+ойп",
    "ip": "айп+и",
    "it": "айт+и",
    "crm": "си ар +эм",
    "ivr": "ай ви +ар",
    "sms": "эс эм +эс",
    "pin": "пин",
    "gmail": "джим+ейл",
    "mail": "м+ейл",
    "bot": "бот",
    "chat": "чат",
    "web": "веб",
    "site": "сайт",
    "app": "эпп",
    "id": "айд+и",
}
URL = re.compile(
    r"\b(?:https?://)?(?:[\w-]+\.)+(?:ru|рф|net|com|org|su|info)\b(?:/[\w/-]*)?", re.IGNORECASE
)
CAPS = re.compile(r"\b[А-ЯЁ]{2,6}\b")
LATIN = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z]+)*")
TRANSLIT = [
    ("sch", "ш"),
    ("sh", "ш"),
    ("ch", "ч"),
    ("th", "т"),
    ("ph", "ф"),
    ("oo", "у"),
    ("ee", "и"),
    ("ck", "к"),
    ("qu", "кв"),
    ("ya", "я"),
    ("yo", "ё"),
    ("yu", "ю"),
    ("kh", "х"),
    ("zh", "ж"),
    ("ts", "ц"),
    ("ce", "се"),
    ("ci", "си"),
    ("x", "кс"),
    ("a", "а"),
    ("b", "б"),
    ("c", "к"),
    ("d", "д"),
    ("e", "е"),
    ("f", "ф"),
    ("g", "г"),
    ("h", "х"),
    ("i", "и"),
    ("j", "дж"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("q", "к"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("v", "в"),
    ("w", "в"),
    ("y", "и"),
    ("z", "з"),
]


def _stress_last_vowel(word: str) -> str:
    """Letter-by-letter abbreviations are stressed on the last syllable: эр-+эф."""
    for i in range(len(word) - 1, -1, -1):
        if word[i] in "аеёиоуыэюя":
            return word[:i] + "+" + word[i:]
    return word


def spell(abbreviation: str) -> str:
    """«РФ» -> «эр+эф», «SMS» -> «эс эм +эс»."""
    lower = abbreviation.lower()
    if lower.isascii():
        return (
            " ".join(LATIN_LETTERS[c] for c in lower[:-1])
            + " "
            + _stress_last_vowel(LATIN_LETTERS[lower[-1]])
            if len(lower) > 1
            else LATIN_LETTERS[lower]
        )
    return _stress_last_vowel("".join(LETTERS[c] for c in lower))


def _caps(m: re.Match[str], _: str) -> str:
    word = m.group(0).lower()
    if word in WORD_ABBREVIATIONS:
        return WORD_ABBREVIATIONS[word]
    if _morph().word_is_known(word) and len(word) > 3:
        return m.group(0)  # a shouted ordinary word («ВНИМАНИЕ»), not an abbreviation
    return spell(m.group(0))


def transliterate(word: str) -> str:
    lower = word.lower()
    if lower in LATIN_WORDS:
        return LATIN_WORDS[lower]
    if word.isupper() and len(word) <= 5:
        return spell(word)
    out, i = [], 0
    while i < len(lower):
        for latin, cyr in TRANSLIT:
            if lower.startswith(latin, i):
                out.append(cyr)
                i += len(latin)
                break
        else:
            out.append(lower[i])
            i += 1
    return "".join(out)


def _url(m: re.Match[str], _: str) -> str:
    host = re.sub(r"^https?://", "", m.group(0), flags=re.IGNORECASE).rstrip("/")
    parts = re.split(r"([./])", host)
    words = {".": "точка", "/": "слэш"}
    return " ".join(words.get(p) or p for p in parts if p)


# --- the pipeline

DAYS = {
    "пн": ("понедельник", "понедельника", "понедельник"),
    "вт": ("вторник", "вторника", "вторник"),
    "ср": ("среда", "среды", "среду"),
    "чт": ("четверг", "четверга", "четверг"),
    "пт": ("пятница", "пятницы", "пятницу"),
    "сб": ("суббота", "субботы", "субботу"),
    "вс": ("воскресенье", "воскресенья", "воскресенье"),
}
DAY = "|".join(DAYS)
DAY_RANGE = re.compile(rf"\b({DAY})\.?\s*[-–—]\s*({DAY})\b\.?", re.IGNORECASE)
SINGLE_DAY = re.compile(rf"\b({DAY})\b\.?(?=[\s,:])", re.IGNORECASE)


def _days(text: str) -> str:
    """«Пн–Пт» -> «с понедельника по пятницу»; «Сб» -> «суббота» (short day names only)."""
    text = DAY_RANGE.sub(
        lambda m: f"с {DAYS[m.group(1).lower()][1]} по {DAYS[m.group(2).lower()][2]}", text
    )
    return SINGLE_DAY.sub(lambda m: DAYS[m.group(1).lower()][0], text)


WORD_REPLACEMENTS = [
    (re.compile(r"\b24/7\b"), "круглосуточно"),
    (re.compile(r"\bт\.\s?е\."), "то есть"),
    (re.compile(r"\bи т\.\s?д\."), "и так далее"),
    (re.compile(r"\bи т\.\s?п\."), "и тому подобное"),
    (re.compile(r"\bт\.\s?к\."), "так как"),
    (re.compile(r"\bт\.\s?н\."), "так называемый"),
    (re.compile(r"\bг\.(?=\s*[А-ЯЁ])"), "город"),
    (re.compile(r"\bул\.(?=\s)"), "улица"),
    (re.compile(r"\bпр-т\b|\bпросп\.(?=\s)"), "проспект"),
    (re.compile(r"\bд\.(?=\s*\d)"), "дом"),
    (re.compile(r"\bтел\.(?=[\s:])"), "телефон"),
    (re.compile(r"\bдоб\.(?=\s)"), "добавочный"),
    (re.compile(r"\bруб\.(?!\w)(?=\s*[а-яё])"), "рублей"),
    (re.compile(r"№\s*"), "номер "),
    (re.compile(r"&"), " и "),
]


def _keep_final_dot(m: re.Match[str], whole: str, words: str) -> str:
    """An abbreviation's dot that also ends the sentence («… и т.д.») stays as a full stop."""
    ends = m.group(0).endswith(".") and re.match(r"\s*(?:$|[А-ЯЁA-Z])", whole[m.end() :])
    return words + ("." if ends else "")


def _cleanup(text: str) -> str:
    text = text.replace("\u00ad", "")
    text = re.sub(r"(?:…|\.{2,})(?=\s*[,a-zа-яё])", "", text)  # «на номер 8-800… клиенты»
    text = re.sub(r"…|\.{3}", ".", text)
    text = re.sub(r"[«»\"“”„*_#]", "", text)
    text = re.sub(r"[ \t]*\n+[ \t]*", ". ", text.strip())
    text = re.sub(r"(?<=[А-Яа-яЁё])(?=\d)|(?<=\d)(?=[А-Яа-яЁё]{3,})", " ", text)  # «ковиду122»
    text = re.sub(r"\+(?=\d)", " +", text)
    text = re.sub(r"(?<=\w)@(?=\w)", " собака ", text)  # e-mail addresses
    return text


PLACEHOLDER = re.compile(r"(\{[^{}]*\})")


def normalize(text: str) -> str:
    """Written Russian -> the words to speak (no stress marks yet). Idempotent on its output.

    Template slots (`{region.phones}`) are kept as they are: they are filled before speaking.
    """
    if "{" in text:
        pieces = PLACEHOLDER.split(text)
        return "".join(p if PLACEHOLDER.fullmatch(p) else _keep_edges(p) for p in pieces)
    return _normalize(text)


def _keep_edges(piece: str) -> str:
    """Normalize text between slots, keeping the spaces that separate it from them."""
    if not piece.strip():
        return piece
    core = _normalize(piece)
    lead = " " if piece[0].isspace() else ""
    return lead + core + (" " if piece[-1].isspace() else "")


def _normalize(text: str) -> str:
    text = _cleanup(text)
    text = _apply(text, URL, _url)
    text = _phones(text)
    text = DASH_TIME.sub(r"\1:00", text)
    text = DASH_TIME_AFTER.sub(r"\1 \2:\3", text)
    text = _apply(text, DATE, _date)
    text = _apply(text, TIME_RANGE, _time_range)
    text = _apply(text, SINGLE_TIME, _single_time)
    text = _apply(text, DAY_MONTH, _day_month)
    text = _apply(text, YEAR, _year)
    text = _days(text)
    for pattern, words in WORD_REPLACEMENTS:
        text = _apply(text, pattern, partial(_keep_final_dot, words=words))
    text = _apply(text, ORDINAL_SUFFIX, _ordinal_suffix)
    text = GROUPED.sub(lambda m: re.sub(r"\D", "", m.group(0)), text)
    text = _apply(text, UNIT, _unit)
    text = _apply(text, NUMBER_RANGE, _number_range)
    text = _apply(text, DECIMAL, _decimal)
    text = _apply(text, NUMBER, _number)
    text = _apply(text, CAPS, _caps)
    text = LATIN.sub(lambda m: transliterate(m.group(0)), text)
    text = re.sub(r"\s*\+\s+", " плюс ", text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"([,.!?;:])(?=[^\s\d])", r"\1 ", text)
    text = re.sub(r"\.(\s*\.)+", ".", text)
    return re.sub(r"\s{2,}", " ", text).strip()


# --- stress and sentences


@lru_cache(maxsize=1)
def _accentor() -> Any:
    import torch
    from silero_stress import load_accentor

    threads = torch.get_num_threads()
    accentor = load_accentor("ru")
    torch.set_num_threads(threads)  # silero_stress sets 1 thread on import; keep ours
    return accentor


def add_stress(text: str) -> str:
    """Mark stress (`+` before the vowel) and ё where the word is unambiguous; keeps given marks."""
    return str(
        _accentor()(text, put_stress_homo=True, put_yo_homo=False, stress_single_vowel=False)
    )


SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_CHUNK = 300  # characters; longer sentences are cut at commas so each chunk stays quick


def split_sentences(text: str) -> list[str]:
    """Sentences to render (and stream) one by one."""
    out: list[str] = []
    for sentence in SENTENCE_END.split(text):
        sentence = sentence.strip()
        while len(sentence) > MAX_CHUNK:
            cut = sentence.rfind(", ", 0, MAX_CHUNK)
            cut = cut if cut > 0 else sentence.rfind(" ", 0, MAX_CHUNK)
            if cut <= 0:
                break
            out.append(sentence[: cut + 1].strip())
            sentence = sentence[cut + 1 :].strip()
        if sentence:
            out.append(sentence)
    return out

"""Read a knowledge base directory: YAML with line numbers, schema validation, editor-grade issues.

`load_kb(dir)` returns the merged `KnowledgeBase` and every `Issue` found; a KB with any error
is unusable (`KnowledgeBase.require` raises `KBInvalid`). Line numbers come from PyYAML's node
marks, so every problem points at the line an editor has to change.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from services.dialog import schema
from services.dialog.acts import KBActs, link
from services.dialog.base import Act
from services.dialog.schema import EntityList, KBFile, Scenario, Settings

Path_ = tuple[str | int, ...]
PLACEHOLDER = re.compile(r"\{(\w+)(?:\.(\w+))?\}")
NO_SCENARIOS = "no scenarios found"
MENU_KEYS = frozenset("123456789")


Severity = Literal["error", "warning"]


class Issue(BaseModel):
    severity: Severity
    file: str
    line: int | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}\n    fix: {self.fix}"


class KBInvalid(Exception):
    def __init__(self, issues: list[Issue]):
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        super().__init__(
            f"knowledge base has {len(errors)} error(s):\n" + "\n".join(map(str, errors))
        )


@dataclass(frozen=True)
class Source:
    file: str
    lines: dict[Path_, int]

    def issue(self, severity: Severity, path: Path_, message: str, fix: str) -> Issue:
        return Issue(
            severity=severity, file=self.file, line=self.line(path), message=message, fix=fix
        )

    def line(self, path: Path_) -> int | None:
        """Line of the deepest node on `path` (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


@dataclass
class KnowledgeBase:
    """The merged, validated content of one KB directory: an immutable snapshot once loaded."""

    directory: Path
    settings: Settings
    scenarios: dict[str, Scenario]
    synonyms: dict[str, list[str]]
    entities: dict[str, EntityList]
    files: list[str] = field(default_factory=list)
    # scenario id -> (source, path of the scenario inside its file), for lint messages
    where: dict[str, tuple[Source, Path_]] = field(default_factory=dict)
    acts: KBActs = field(init=False)  # built-in acts + the KB's overrides (set by _merge)

    def location(self, scenario_id: str, *sub: str | int) -> tuple[str, int | None]:
        source, path = self.where[scenario_id]
        return source.file, source.line((*path, *sub))


# --- YAML with marks -------------------------------------------------------------------------


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int):
        self.key, self.line = key, line


# libyaml's parser where PyYAML has it (its wheels do): the pure-Python one was the largest
# share of a big KB's load (bench/kb_speed.py).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _to_python(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path_, lines: dict[Path_, int]
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if key in out:
                raise _DuplicateKey(str(key), key_node.start_mark.line + 1)
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _to_python(loader, value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node)


def parse_yaml(text: str) -> tuple[Any, dict[Path_, int]]:
    """YAML → Python plus the line of every key and item.

    Raises yaml.MarkedYAMLError or _DuplicateKey.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        return (None if node is None else _to_python(loader, node, (), lines)), lines
    finally:
        loader.dispose()


# --- schema errors in editor words -----------------------------------------------------------


def _field_names() -> list[str]:
    names: set[str] = set()
    for obj in vars(schema).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            names.update(obj.model_fields)
    return sorted(names)


def _schema_issue(source: Source, err: ErrorDetails) -> Issue:
    loc: Path_ = tuple(err["loc"])
    where = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _field_names(), n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`? " if close else ""
        return source.issue(
            "error",
            loc,
            f"unknown key `{key}` (at {where})",
            f"{hint}Keys allowed here are in knowledge_base/README.md; remove or rename it.",
        )
    if err["type"] == "missing":
        return source.issue(
            "error",
            loc,
            f"required key `{loc[-1]}` is missing (at {where})",
            f"add `{loc[-1]}:` here",
        )
    return source.issue(
        "error", loc, f"{where}: {err['msg']}", f"correct the value (got {err.get('input')!r})"
    )


def _read_file(path: Path, root: Path) -> tuple[KBFile | None, Source, list[Issue]]:
    name = str(path.relative_to(root.parent)) if path.is_relative_to(root.parent) else str(path)
    where = Source(name, {})
    try:
        data, lines = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        fail = where.issue("error", (), f"not UTF-8 text: {exc}", "save the file in UTF-8 encoding")
        return None, where, [fail]
    except _DuplicateKey as exc:
        fail = Issue(
            severity="error",
            file=name,
            line=exc.line,
            message=f"key `{exc.key}` appears twice in the same block",
            fix="keep one of them (YAML would silently drop the first)",
        )
        return None, where, [fail]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        col = f", column {mark.column + 1}" if mark else ""
        ctx = exc.context_mark
        if exc.context and ctx and mark and ctx.line != mark.line:
            col += f" ({exc.context} at line {ctx.line + 1})"
        fail = Issue(
            severity="error",
            file=name,
            line=mark.line + 1 if mark else None,
            message=f"YAML syntax error{col}: {exc.problem}",
            fix="check indentation (spaces, not tabs), the colon after each key, "
            "and quotes around text containing `: ` or `#`",
        )
        return None, where, [fail]
    source = Source(name, lines)
    if data is None:
        return (
            KBFile(),
            source,
            [source.issue("warning", (), "file is empty", "delete it or add scenarios")],
        )
    if not isinstance(data, dict):
        fail = source.issue(
            "error",
            (),
            "the file must be a mapping with keys like `scenarios:`",
            "start the file with `scenarios:` (see knowledge_base/README.md)",
        )
        return None, source, [fail]
    try:
        return KBFile.model_validate(data), source, []
    except ValidationError as exc:
        return None, source, [_schema_issue(source, e) for e in exc.errors()]


# --- checks across files -----------------------------------------------------------------------


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower().replace("ё", "е")).split())


def _check_scenario(sc: Scenario, kb: KnowledgeBase) -> list[Issue]:
    issues: list[Issue] = []

    source, path = kb.where[sc.id]

    def add(severity: Severity, sub: Path_, message: str, fix: str) -> None:
        issues.append(source.issue(severity, (*path, *sub), f"scenario `{sc.id}`: {message}", fix))

    if not sc.examples and sc.act is None:  # an act is understood from its built-in phrases
        add(
            "error",
            ("examples",),
            "has no example questions, so no caller can ever reach it",
            "add a few `examples:` the way callers would ask",
        )
    if sc.action != "repeat":
        if not sc.answers and sc.act is None:  # an act without answers says the built-in ones
            add(
                "error",
                ("answers",),
                "has no answer",
                "add `answers:` with at least one text to say",
            )
        for i, text in enumerate(sc.answers):
            if not text.strip():
                add(
                    "error",
                    ("answers", i),
                    "answer text is empty",
                    "write the answer or delete this line",
                )
    seen: set[str] = set()
    for i, text in enumerate(sc.examples):
        key = _plain(text)
        if not key:
            add(
                "error",
                ("examples", i),
                "example question is empty",
                "write the question or delete this line",
            )
        elif key in seen:
            add(
                "warning",
                ("examples", i),
                f"example «{text}» is listed twice",
                "delete the repeated line",
            )
        seen.add(key)
    _check_act(sc, add)
    for name, slot in sc.slots.items():
        if (slot.entity is None) == (slot.digits is None):
            add(
                "error",
                ("slots", name),
                f"slot `{name}` needs exactly one of `entity` and `digits`",
                "keep `entity: <list>` for a value from a list, or "
                "`digits: {min_length: …, max_length: …}` for a number the caller keys in",
            )
        elif slot.digits and slot.digits.min_length > slot.digits.max_length:
            add(
                "error",
                ("slots", name, "digits"),
                f"slot `{name}`: min_length {slot.digits.min_length} is more than "
                f"max_length {slot.digits.max_length}",
                "make min_length ≤ max_length",
            )
        elif slot.entity is not None and slot.entity not in kb.entities:
            close = difflib.get_close_matches(slot.entity, list(kb.entities), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            add(
                "error",
                ("slots", name, "entity"),
                f"slot `{name}` uses unknown entity list `{slot.entity}`",
                f"define `entities: {slot.entity}:` in a KB file, or correct the name.{hint}",
            )
    for key, target in sc.menu.items():
        at: Path_ = ("menu", int(key) if key.isdigit() else key)
        if key not in MENU_KEYS:
            add(
                "error",
                at,
                f"menu key `{key}` is not a key 1..9 (0, * and # are kept for the operator "
                "and for ending a key entry)",
                "use one of the keys 1 to 9",
            )
        if target not in kb.scenarios:
            close = difflib.get_close_matches(target, list(kb.scenarios), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            add(
                "error",
                at,
                f"menu key {key} opens unknown scenario `{target}`",
                f"use the `id` of an existing scenario.{hint}",
            )
    texts = [("answers", i, t) for i, t in enumerate(sc.answers)]
    if sc.followup:
        texts.append(("followup", 0, sc.followup))
    for key, i, text in texts:
        sub: Path_ = (key, i) if key == "answers" else (key,)
        reported: set[str] = set()
        for m in PLACEHOLDER.finditer(text):
            name, attr = m.group(1), m.group(2)
            used = sc.slots.get(name)
            if used is None:
                if name in reported:
                    continue
                reported.add(name)
                add(
                    "error",
                    sub,
                    f"the answer uses {{{name}}} but the scenario has no slot `{name}`",
                    f"add `slots: {name}: {{entity: …, prompt: …}}` or remove {{{name}}}",
                )
            elif attr and used.digits is not None:
                add(
                    "error",
                    sub,
                    f"{{{name}.{attr}}}: slot `{name}` holds digits, which have no fields",
                    f"write {{{name}}}",
                )
            elif attr and used.entity in kb.entities:
                ent = kb.entities[used.entity]
                missing = [
                    v.name for v in ent.values if attr not in v.attrs and attr not in ent.defaults
                ]
                if missing:
                    add(
                        "error",
                        sub,
                        f"{{{name}.{attr}}}: values without `{attr}`: {', '.join(missing[:5])}",
                        f"give them `attrs: {{{attr}: …}}` or the list `defaults: {{{attr}: …}}`",
                    )
    return issues


# `action:` each act implies: a goodbye ends the call, «повторите» repeats, the rest answer.
ACT_ACTION = {Act.BYE: "end_call", Act.REPEAT: "repeat"}


def _check_act(sc: Scenario, add: Callable[[Severity, Path_, str, str], None]) -> None:
    if sc.act is None:
        return
    action = ACT_ACTION.get(sc.act, "answer")
    if sc.action not in ("answer", action):
        add(
            "error",
            ("action",),
            f"`act: {sc.act}` and `action: {sc.action}` contradict each other",
            f"remove `action:` (`act: {sc.act}` already does what it needs)",
        )
    if sc.handoff is not None and sc.act is not Act.OPERATOR:
        add(
            "error",
            ("handoff",),
            f"`act: {sc.act}` cannot hand the call off"
            + (": a goodbye is never transferred to an operator" if sc.act is Act.BYE else ""),
            "remove `handoff:`; only `act: operator` transfers the call",
        )
    if sc.act is Act.REPEAT and sc.answers:
        add(
            "warning",
            ("answers",),
            "`act: repeat` says the last thing again; its answers are never used",
            "remove `answers:`",
        )


def _merge(
    files: list[tuple[KBFile, Source]], directory: Path
) -> tuple[KnowledgeBase, list[Issue]]:
    issues: list[Issue] = []
    settings_from: Source | None = None
    kb = KnowledgeBase(directory, Settings(), {}, {}, {}, files=[s.file for _, s in files])
    synonym_owner: dict[str, str] = {}
    for data, source in files:
        if data.settings is not None:
            if settings_from is not None:
                issues.append(
                    source.issue(
                        "error",
                        ("settings",),
                        f"`settings:` is already defined in {settings_from.file}",
                        "keep one `settings:` block for the whole knowledge base",
                    )
                )
            else:
                kb.settings, settings_from = data.settings, source
        for i, sc in enumerate(data.scenarios):
            if sc.id in kb.scenarios:
                first_file, first_line = kb.location(sc.id)
                issues.append(
                    source.issue(
                        "error",
                        ("scenarios", i, "id"),
                        f"duplicate scenario id `{sc.id}` (also {first_file}:{first_line})",
                        "give each scenario its own id, or merge the two scenarios",
                    )
                )
                continue
            kb.scenarios[sc.id] = sc
            kb.where[sc.id] = (source, ("scenarios", i))
        for name, lst in data.entities.items():
            if name in kb.entities:
                issues.append(
                    source.issue(
                        "error",
                        ("entities", name),
                        f"entity list `{name}` is defined twice",
                        "keep one list with this name, or rename one",
                    )
                )
            kb.entities[name] = lst
        for canon, variants in data.synonyms.items():
            if canon in kb.synonyms:
                issues.append(
                    source.issue(
                        "error",
                        ("synonyms", canon),
                        f"synonym group `{canon}` is defined twice",
                        "merge the variants into one group",
                    )
                )
            for variant in variants:
                owner = synonym_owner.setdefault(_plain(variant), canon)
                if owner != canon:
                    issues.append(
                        source.issue(
                            "warning",
                            ("synonyms", canon),
                            f"«{variant}» is a synonym of both `{owner}` and `{canon}`",
                            "keep it in one group only",
                        )
                    )
            kb.synonyms[canon] = variants
    if not kb.scenarios:
        issues.append(
            Source(str(directory), {}).issue(
                "error", (), NO_SCENARIOS, "add YAML files with a `scenarios:` list"
            )
        )
    main = kb.settings.main_menu
    if main is not None and not (main in kb.scenarios and kb.scenarios[main].menu):
        where = settings_from or Source(str(directory), {})
        issues.append(
            where.issue(
                "error",
                ("settings", "main_menu"),
                f"`main_menu: {main}` is not a scenario with a `menu:`",
                "name the scenario whose answer reads the main key menu",
            )
        )
    declared: dict[Act, str] = {}
    for sc in kb.scenarios.values():
        first = declared.setdefault(sc.act, sc.id) if sc.act else sc.id
        if first != sc.id:
            source, path = kb.where[sc.id]
            ofile, oline = kb.location(first)
            issues.append(
                source.issue(
                    "error",
                    (*path, "act"),
                    f"`act: {sc.act}` is already scenario `{first}` ({ofile}:{oline})",
                    "keep one scenario per act: move these examples and answers there",
                )
            )
    kb.acts = link(kb.scenarios, kb.settings.fillers)
    owner_of: dict[str, str] = {}
    for sc in kb.scenarios.values():
        issues.extend(_check_scenario(sc, kb))
        source, path = kb.where[sc.id]
        for i, text in enumerate(sc.examples):
            key = _plain(text)
            other = owner_of.setdefault(key, sc.id)
            if key and other != sc.id:
                ofile, oline = kb.location(other)
                issues.append(
                    source.issue(
                        "error",
                        (*path, "examples", i),
                        f"example «{text}» belongs to two scenarios: `{other}` ({ofile}:{oline}) "
                        f"and `{sc.id}`",
                        "keep it in the one scenario it really asks about",
                    )
                )
    return kb, issues


def load_kb(directory: Path) -> tuple[KnowledgeBase | None, list[Issue]]:
    """Load and validate every *.yaml/*.yml under `directory`. None when any error was found."""
    directory = Path(directory)
    if not directory.is_dir():
        return None, [
            Issue(
                severity="error",
                file=str(directory),
                line=None,
                message="knowledge base directory not found",
                fix="pass the folder holding the YAML files (default: knowledge_base/)",
            )
        ]
    paths = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    issues: list[Issue] = []
    good: list[tuple[KBFile, Source]] = []
    for path in paths:
        data, source, found = _read_file(path, directory)
        issues.extend(found)
        if data is not None:
            good.append((data, source))
    kb, merged = _merge(good, directory)
    if issues:  # «no scenarios» only repeats that the files holding them failed
        merged = [i for i in merged if i.message != NO_SCENARIOS]
    issues.extend(merged)
    if any(i.severity == "error" for i in issues):
        return None, issues
    return kb, issues


def require_kb(directory: Path) -> tuple[KnowledgeBase, list[Issue]]:
    """`load_kb` that raises KBInvalid on errors (warnings are returned)."""
    kb, issues = load_kb(directory)
    if kb is None:
        raise KBInvalid(issues)
    return kb, issues

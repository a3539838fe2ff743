"""Update the plugin's Qt Linguist sources from the code and build the ``.qm`` files the plugin loads.

Every ``tr("...")`` call with a string literal in rs_openvocab/**/*.py is a message of the context
"rs_openvocab" in rs_openvocab/i18n/rs_openvocab_<language>.ts (zh_CN, de), in source order. A message
keeps its translation while its source string is still used; a new one is "unfinished" until translated
(in Qt Linguist or by hand); one no longer used is dropped. Then lrelease builds the .qm next to each .ts.

Run: python3 tools/translations.py           update the .ts files and build the .qm files
     python3 tools/translations.py --check   exit 1, listing them, when a string lacks a finished
                                             translation (or its translation's {placeholders} differ)
"""
from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "rs_openvocab"
FOLDER = PLUGIN / "i18n"
CONTEXT = "rs_openvocab"  # as in rs_openvocab/translation.py, which this script does not import (it needs QGIS)
LANGUAGES = ("zh_CN", "de")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
Translation = tuple[str, str | None]  # text, type ("unfinished" or None for a finished one)


def source_strings() -> list[str]:
    """The literal arguments of ``tr()`` calls in the plugin, each once, in the order the code has them."""
    found: dict[str, None] = {}
    for path in sorted(PLUGIN.rglob("*.py")):
        calls = [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tr"
                 and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
                 and isinstance(node.args[0].value, str)]
        for call in sorted(calls, key=lambda node: (node.lineno, node.col_offset)):
            found.setdefault(call.args[0].value, None)
    return list(found)


def ts_path(language: str) -> Path:
    return FOLDER / f"rs_openvocab_{language}.ts"


def read_ts(path: Path) -> dict[str, Translation]:
    """Source string -> translation of the context's messages in ``path`` (none when it does not exist)."""
    if not path.is_file():
        return {}
    translations = {}
    for context in ET.parse(path).getroot().iter("context"):
        if context.findtext("name") != CONTEXT:
            continue
        for message in context.iter("message"):
            translation = message.find("translation")
            kind = None if translation is None else translation.get("type")
            if translation is not None and kind not in ("obsolete", "vanished"):
                translations[message.findtext("source", "")] = (translation.text or "", kind)
    return translations


def write_ts(path: Path, language: str, sources: list[str], known: dict[str, Translation]) -> None:
    root = ET.Element("TS", version="2.1", language=language)
    context = ET.SubElement(root, "context")
    ET.SubElement(context, "name").text = CONTEXT
    for source in sources:
        text, kind = known.get(source, ("", "unfinished"))
        message = ET.SubElement(context, "message")
        ET.SubElement(message, "source").text = source
        translation = ET.SubElement(message, "translation", {"type": kind} if kind else {})
        translation.text = text
    ET.indent(root, space="    ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n{body}\n', encoding="utf-8")


def problems(sources: list[str]) -> list[str]:
    """One line per source string whose translation in some language is missing, unfinished or mismatched."""
    lines = []
    for language in LANGUAGES:
        known = read_ts(ts_path(language))
        for source in sources:
            text, kind = known.get(source, ("", "unfinished"))
            if kind == "unfinished" or not text:
                lines.append(f"{language}: untranslated: {source!r}")
            elif sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(source)):
                lines.append(f"{language}: placeholders differ: {source!r} -> {text!r}")
    return lines


def update(sources: list[str]) -> None:
    FOLDER.mkdir(exist_ok=True)
    for language in LANGUAGES:
        path = ts_path(language)
        write_ts(path, language, sources, read_ts(path))
        subprocess.run(["lrelease", "-silent", str(path), "-qm", str(path.with_suffix(".qm"))], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only list the strings that lack a finished translation; exit 1 when there are any")
    sources = source_strings()
    if parser.parse_args().check:
        lines = problems(sources)
        print("\n".join(lines) or f"{len(sources)} strings, all translated in {', '.join(LANGUAGES)}")
        return 1 if lines else 0
    update(sources)
    print(f"{len(sources)} strings; {len(problems(sources))} translations to do in {', '.join(LANGUAGES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

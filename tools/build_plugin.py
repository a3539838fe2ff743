"""Build the installable plugin zip: dist/rs_openvocab-VERSION.zip with the folder rs_openvocab/ inside.

Run: python tools/build_plugin.py [--out DIR]. Translation sources (.ts) and caches stay out;
the built .qm files go in.
"""
from __future__ import annotations

import argparse
import configparser
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "rs_openvocab"
LEFT_OUT = {"__pycache__", ".ts", ".pyc"}


def version() -> str:
    parser = configparser.ConfigParser()
    parser.read(PLUGIN / "metadata.txt", encoding="utf-8")
    return parser.get("general", "version")


def build(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"rs_openvocab-{version()}.zip"
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PLUGIN.rglob("*")):
            if path.is_dir() or LEFT_OUT & ({path.suffix} | set(path.parts)):
                continue
            archive.write(path, Path("rs_openvocab") / path.relative_to(PLUGIN))
    partial.replace(target)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    print(build(parser.parse_args().out))

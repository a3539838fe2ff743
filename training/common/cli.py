"""The command line every trainer shares: ``--config FILE`` plus overrides, and how errors are shown.

python -m training.<name> --config FILE [--out-dir DIR] [--resume] [--device cpu|cuda|cuda:N]
                          [--max-steps N] [--seed N]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from backend.errors import UserInputError
from training.common.loop import DEVICE_PATTERN, LoopResult

INTERRUPTED_EXIT = 130


def _device(text: str) -> str:
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: give cpu, cuda, cuda:N or auto")
    return text


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def training_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The shared options; a trainer may add its own before parsing."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", type=Path, required=True, help="YAML config file")
    parser.add_argument("--out-dir", type=Path, help="run folder (overrides train.out_dir)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the out dir from its last.pt")
    parser.add_argument("--device", type=_device, help="cpu, cuda or cuda:N (overrides train.device)")
    parser.add_argument("--max-steps", type=_positive, help="stop after this many optimiser steps in all "
                                                            "(overrides train.max_steps)")
    parser.add_argument("--seed", type=_seed, help="random seed (overrides train.seed)")
    return parser


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's values as dotted config keys (None where not given)."""
    return {"train.out_dir": None if args.out_dir is None else str(args.out_dir), "train.device": args.device,
            "train.max_steps": args.max_steps, "train.seed": args.seed}


def error_sentence(error: UserInputError) -> str:
    """The sentence alone, job fields written as flags; one raised in a DataLoader worker unwrapped too."""
    text = error.render(lambda name: name if "." in name else f"--{name.replace('_', '-')}")  # config key or flag
    if "Original Traceback" in text:  # torch re-raises a worker's error with the worker's traceback as message
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text


def run_cli(train: Callable[[argparse.Namespace], LoopResult], parser: argparse.ArgumentParser,
            argv: Sequence[str] | None = None) -> int:
    """Parse, train, report; 0 done, 2 bad input (one sentence, no traceback), 130 stopped by Ctrl-C."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = train(args)
    except UserInputError as error:
        print(f"error: {error_sentence(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("stopped at once; the run's last.pt holds its latest checkpoint: --resume continues from it.",
              file=sys.stderr)
        return INTERRUPTED_EXIT
    if result.interrupted:
        print(f"stopped at step {result.step}; {result.out_dir / 'last.pt'} saved: add --resume to continue.",
              file=sys.stderr)
        return INTERRUPTED_EXIT
    print(f"trained {result.step} steps; wrote {result.exported}")
    return 0

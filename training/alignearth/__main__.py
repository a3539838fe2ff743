"""python -m training.alignearth --config FILE [--out-dir DIR] [--resume] [--device D] [--max-steps N] [--seed N]"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from training.common.cli import overrides, run_cli, training_parser
from training.common.loop import LoopResult


def _train(args: argparse.Namespace) -> LoopResult:
    from training.alignearth.config import AlignEarthConfig
    from training.alignearth.train import train
    from training.common.config import load_config, with_overrides

    config = with_overrides(load_config(args.config, AlignEarthConfig), overrides(args))
    return train(config, resume=args.resume)


def main(argv: Sequence[str] | None = None) -> int:
    parser = training_parser("python -m training.alignearth",
                             "AlignEarth: distil a SAR image encoder from a frozen optical CLIP on paired images "
                             "(SegEarth-OV-2, section 4).")
    return run_cli(_train, parser, argv)


if __name__ == "__main__":
    sys.exit(main())

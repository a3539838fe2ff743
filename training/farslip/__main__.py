"""python -m training.farslip --config FILE [--out-dir DIR] [--resume] [--device D] [--max-steps N] [--seed N]"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from training.common.cli import overrides, run_cli, training_parser
from training.common.loop import LoopResult


def _train(args: argparse.Namespace) -> LoopResult:
    from training.common.config import with_overrides
    from training.farslip.config import load_farslip_config
    from training.farslip.train import train

    config = with_overrides(load_farslip_config(args.config), overrides(args))
    return train(config, resume=args.resume)


def main(argv: Sequence[str] | None = None) -> int:
    parser = training_parser("python -m training.farslip",
                             "FarSLIP: fine-tune a CLIP for fine-grained remote-sensing understanding, stage I "
                             "(image-caption contrast + patch-to-patch self-distillation) or stage II (+ "
                             "region-category contrast), as the config's 'stage' says.")
    return run_cli(_train, parser, argv)


if __name__ == "__main__":
    sys.exit(main())

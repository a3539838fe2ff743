"""python -m training.simfeatup --config FILE [--out-dir DIR] [--resume] [--device D] [--max-steps N] [--seed N]"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from training.common.cli import overrides, run_cli, training_parser
from training.common.loop import LoopResult


def _train(args: argparse.Namespace) -> LoopResult:
    from training.common.config import load_config, with_overrides
    from training.simfeatup.config import SimFeatUpConfig
    from training.simfeatup.train import train

    config = with_overrides(load_config(args.config, SimFeatUpConfig), overrides(args))
    return train(config, resume=args.resume)


def main(argv: Sequence[str] | None = None) -> int:
    parser = training_parser("python -m training.simfeatup",
                             "SimFeatUp: train the JBU_One feature upsampler on a frozen CLIP's features over a "
                             "folder of images (SegEarth-OV, section 3.2).")
    return run_cli(_train, parser, argv)


if __name__ == "__main__":
    sys.exit(main())

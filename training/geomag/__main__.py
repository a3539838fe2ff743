"""python -m training.geomag --config FILE [--out-dir DIR] [--resume] [--device D] [--max-steps N] [--seed N]"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from training.common.cli import overrides, run_cli, training_parser
from training.common.loop import LoopResult


def _train(args: argparse.Namespace) -> LoopResult:
    from training.common.config import with_overrides
    from training.geomag.config import TmraConfig, load_geomag_config

    config = with_overrides(load_geomag_config(args.config), overrides(args))
    if isinstance(config, TmraConfig):
        from training.geomag.stage1 import train
    else:
        from training.geomag.stage2 import train
    return train(config, resume=args.resume)


def main(argv: Sequence[str] | None = None) -> int:
    parser = training_parser("python -m training.geomag",
                             "GeoMag: stage 1 trains the TMRA task granularity classifier on (query, granularity) "
                             "pairs; stage 2 trains LoRA, the [SEG] rows, the text projection and the pixel decoder "
                             "on referring segmentation and grounded conversations, as the config's 'stage' says.")
    return run_cli(_train, parser, argv)


if __name__ == "__main__":
    sys.exit(main())

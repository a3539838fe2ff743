"""SegEarth-OV + SimFeatUp on a 448² image alone and beside another 2-thread PyTorch process.

    .venv/bin/python bench/busy_machine.py [--size 448] [--upsampler fast|reference] [--repeat 3]

An analyst's laptop runs QGIS (and more) beside the backend. The competitor here is a
second Python process doing 2-thread float32 matrix products without pause, started before
the timed runs and stopped after them. Prints the median model time alone and beside it,
and the slowdown (target: at most 2x).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
COMPETITOR = """
import torch
torch.set_num_threads(2)
a = torch.randn(1024, 1024)
while True:
    a = torch.tanh(a @ a * 1e-3)
"""


def model_time(size: int, upsampler: str, repeat: int) -> tuple[float, str]:
    command = [sys.executable, str(BENCH / "segment_speed.py"), "--size", str(size), "--upsampler", upsampler,
               "--repeat", str(repeat)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("model time"))
    return float(re.match(r"model time ([\d.]+) s", line).group(1)), line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--upsampler", choices=("fast", "reference"), default="fast")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    alone, alone_line = model_time(args.size, args.upsampler, args.repeat)
    print(f"alone:  {alone_line} (load average {os.getloadavg()[0]:.2f})")
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])
    try:
        time.sleep(3)  # let it reach full speed
        busy, busy_line = model_time(args.size, args.upsampler, args.repeat)
        load = os.getloadavg()[0]
    finally:
        competitor.kill()
        competitor.wait()
    print(f"beside: {busy_line} (load average {load:.2f})")
    print(f"slowdown beside one 2-thread PyTorch process: {busy / alone:.2f}x "
          f"({args.size}x{args.size}, upsampler {args.upsampler})")


if __name__ == "__main__":
    main()

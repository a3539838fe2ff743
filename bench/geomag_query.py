"""Seconds per query and peak memory of `rsov refer`, with and without MagCrop, at two raster sizes.

    .venv/bin/python bench/geomag_query.py [--sizes 800,4096] [--repeat 3] [--checkpoint GEOMAG.safetensors]
        [--device cpu|cuda] [--threads 2]

Each (size, MagCrop on/off) runs in its own process (so peak RSS is that configuration's):
the checkpoint is loaded once, then ``--repeat`` referring queries go through the engine
(``engine.run(ReferJob)``: read the area, MagCrop, model, mask raster and polygons), then
``--repeat`` more through the model's part alone (area reads, MagCrop, VLM, SAM2, decoder); the
median seconds per query of each and the process's peak RSS (and the GPU's peak allocation on
CUDA) are printed as one line each. Without ``--checkpoint`` a tiny random GeoMag is built
(tests/helpers/geomag.py: CLIP tower and Llama of width 64, SAM2 hiera-t at 256) — what it
measures is the pipeline's own cost (reading, MagCrop's BERT + attention search, SAM2 at
its input size, writing), not a 7B model's.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROMPT = "the small boat beside the second pier"


def build_tiny_checkpoint(folder: Path) -> Path:
    import torch

    from backend.models.geomag.tmra import GranularityClassifier
    from tests.helpers.geomag import tiny_bert_dir, tiny_geomag_checkpoint
    from transformers import AutoConfig

    torch.manual_seed(0)
    hidden = AutoConfig.from_pretrained(tiny_bert_dir(folder)).hidden_size
    return tiny_geomag_checkpoint(folder, tmra_state=GranularityClassifier(hidden).state_dict())


def one_configuration(args) -> None:
    """Runs in a child process: load once, time ``repeat`` queries, print a JSON line."""
    import torch

    from backend.engine import run
    from backend.jobs import ReferJob
    from backend.models.cache import ModelCache
    from tests.helpers.rasters import write_scene

    torch.set_num_threads(args.threads)
    folder = Path(args.work)
    raster = folder / f"scene-{args.size}.tif"
    if not raster.exists():
        write_scene(raster, args.size, args.size)
    models = ModelCache()
    times = []
    for index in range(args.repeat + 1):  # the first query loads the model: not timed
        job = ReferJob(raster, PROMPT, checkpoint=args.checkpoint, out=folder / f"mask-{os.getpid()}.gpkg",
                       overwrite=True, no_magcrop=not args.magcrop, device=args.device)
        started = time.perf_counter()
        run(job, models=models)
        if index:
            times.append(time.perf_counter() - started)
    from backend.describe.area import Area
    from backend.describe.loading import load_geomag
    from backend.raster.source import RasterSource

    pipeline = load_geomag(Path(args.checkpoint), args.device, "auto", False, models)  # resident: no load
    area = Area(RasterSource.open(raster))
    model_times = []
    for _ in range(args.repeat):  # the model's part alone: area reads, MagCrop, VLM + SAM2 + decoder
        started = time.perf_counter()
        pipeline.refer(area, PROMPT, magcrop=args.magcrop)
        model_times.append(time.perf_counter() - started)
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None
    print(json.dumps({"size": args.size, "magcrop": args.magcrop, "seconds": statistics.median(times),
                      "model_seconds": statistics.median(model_times),
                      "runs": [round(t, 3) for t in times], "peak_rss_mib": resource.getrusage(
                          resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_mib": peak_gpu}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="800,4096")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--magcrop", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.magcrop = bool(args.magcrop)
        one_configuration(args)
        return
    with tempfile.TemporaryDirectory(prefix="geomag-bench-") as work:
        checkpoint = args.checkpoint or str(build_tiny_checkpoint(Path(work) / "model"))
        print(f"checkpoint {checkpoint}; device {args.device}; {args.threads} threads; load average "
              f"{os.getloadavg()[0]:.2f}")
        for size in map(int, args.sizes.split(",")):
            for magcrop in (0, 1):
                child = subprocess.run([sys.executable, __file__, "--child", "--size", str(size), "--magcrop",
                                        str(magcrop), "--work", work, "--checkpoint", checkpoint, "--repeat",
                                        str(args.repeat), "--device", args.device, "--threads", str(args.threads)],
                                       capture_output=True, text=True, env={**os.environ, "RSOV_OFFLINE": "1"})
                if child.returncode:
                    sys.exit(child.stderr)
                row = json.loads(child.stdout.strip().splitlines()[-1])
                print(f"{size}² MagCrop {'on ' if magcrop else 'off'}: {row['seconds']:.2f} s/query "
                      f"(runs {row['runs']}; model part {row['model_seconds']:.2f} s), peak RSS {row['peak_rss_mib']:.0f} MiB"
                      + (f", GPU peak {row['peak_gpu_mib']:.0f} MiB" if row["peak_gpu_mib"] else ""))
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

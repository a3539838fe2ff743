"""Does polling slow the service down? 50 clients ask for a job's status while it runs.

    .venv/bin/python bench/service_polling.py [--clients 50] [--interval 0.5] [--size 1024] [--repeats 3]

Starts `rsov serve` on a free loopback port (its own RSOV_HOME under bench/out/), runs the
same job (random ViT-B/16 without the upsampler on a synthetic raster) alternately alone
and while ``--clients`` asyncio clients each GET /v1/jobs/ID every ``--interval`` seconds
until it finishes. Prints the job's engine seconds for each run, their medians, the
slowdown, the status latency p50/p99 over every poll, and the load average.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from streaming import OUT, synthetic_raster, vit_b16_weights  # noqa: E402

from tests.helpers.service import RunningService  # noqa: E402


async def poll(url: str, token: str, job_id: str, clients: int, interval: float) -> list[float]:
    import httpx

    latencies: list[float] = []
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=60) as client:
        async def one(offset: float) -> None:
            await asyncio.sleep(offset)  # spread the clients over one interval
            while not done.is_set():
                started = time.perf_counter()
                response = await client.get(f"/v1/jobs/{job_id}")
                latencies.append(time.perf_counter() - started)
                if response.json()["state"] not in ("queued", "running"):
                    done.set()
                await asyncio.sleep(interval)

        await asyncio.gather(*(one(interval * i / clients) for i in range(clients)))
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_job(service: RunningService, body: dict, clients: int, interval: float) -> dict:
    """The job's engine seconds, the status latencies, and the CPU seconds of the service and of the clients."""
    service_cpu, client_cpu = cpu_seconds(service.process.pid), time.process_time()
    job_id = service.submit(**body)
    latencies = asyncio.run(poll(service.url, service.token, job_id, clients, interval)) if clients else []
    status = service.wait(job_id, timeout=3600)
    assert status["state"] == "done", status
    return {"seconds": service.client.get(f"/v1/jobs/{job_id}/result").json()["seconds"], "latencies": latencies,
            "service_cpu": cpu_seconds(service.process.pid) - service_cpu, "client_cpu": time.process_time() - client_cpu}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between one client's polls")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    clip, _ = vit_b16_weights()
    raster = synthetic_raster(args.size, args.size)
    home, results = OUT / "service-home", OUT / "service-results"
    shutil.rmtree(home, ignore_errors=True)
    results.mkdir(parents=True, exist_ok=True)
    service = RunningService(home, "--output-root", str(results), threads=None)
    body = {"raster": str(raster), "classes": "water; building,roof; road; tree; grass; bare soil",
            "clip_weights": str(clip), "no_upsampler": True, "out_raster": str(results / "classes.tif"),
            "overwrite": True}
    try:
        run_job(service, body, 0, args.interval)  # loads the model and encodes the classes once
        alone_runs, polled_runs = [], []
        for _ in range(args.repeats):
            alone_runs.append(run_job(service, body, 0, args.interval))
            polled_runs.append(run_job(service, body, args.clients, args.interval))
    finally:
        service.stop()
    alone, polled = [r["seconds"] for r in alone_runs], [r["seconds"] for r in polled_runs]
    latencies = [latency for r in polled_runs for latency in r["latencies"]]
    extra_cpu = statistics.median(r["service_cpu"] for r in polled_runs) - statistics.median(
        r["service_cpu"] for r in alone_runs)
    polls_per_run = len(latencies) / len(polled_runs)
    load = os.getloadavg()
    print(f"{args.size}x{args.size}, ViT-B/16 without upsampler, {os.cpu_count()} cores")
    print(f"job alone: {', '.join(f'{s:.1f}' for s in alone)} s (median {statistics.median(alone):.1f} s)")
    print(f"with {args.clients} clients polling every {args.interval} s: {', '.join(f'{s:.1f}' for s in polled)} s "
          f"(median {statistics.median(polled):.1f} s, {statistics.median(polled) / statistics.median(alone) - 1:+.1%})")
    print(f"status latency over {len(latencies)} polls: p50 {1000 * percentile(latencies, 50):.1f} ms, "
          f"p99 {1000 * percentile(latencies, 99):.1f} ms, max {1000 * max(latencies):.1f} ms")
    print(f"CPU per run: service {statistics.median(r['service_cpu'] for r in alone_runs):.1f} s alone, "
          f"{statistics.median(r['service_cpu'] for r in polled_runs):.1f} s polled "
          f"({1000 * extra_cpu / polls_per_run:+.2f} ms per poll); the clients' own process "
          f"{statistics.median(r['client_cpu'] for r in polled_runs):.1f} s on the same cores")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()

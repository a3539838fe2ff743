"""``rsov serve`` started as a user starts it: the installed command on a free loopback port."""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

RSOV = str(Path(sys.executable).with_name("rsov"))
FINAL = ("done", "failed", "cancelled", "interrupted")


class RunningService:
    def __init__(self, home: Path, *args: str, token: str | None = None, threads: int | None = 1,
                 env: dict[str, str] | None = None) -> None:
        """``threads``: torch's threads in the service (None: its own default); ``env``: more variables."""
        self.home = home
        extra, env = env, {**os.environ, "RSOV_HOME": str(home), "RSOV_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("RSOV_TOKEN", None)
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        env.update(extra or {})
        self.log = home / "service.log"
        home.mkdir(parents=True, exist_ok=True)
        command = [RSOV, "serve", "--port", "0", *args] + (["--token", token] if token else [])
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=open(self.log, "ab"),
                                        text=True)
        self.url = self._wait_for_url()
        self.token = token or (home / "server" / "token").read_text().strip()
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"},
                                   timeout=60)

    def _wait_for_url(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
                match = re.search(r"listening on (http://\S+)", line)
                if match:
                    return match.group(1)
            if self.process.poll() is not None:
                break
        raise RuntimeError(f"rsov serve did not start: {self.log.read_text()}")

    def submit(self, **body) -> str:
        response = self.client.post("/v1/jobs", json={"kind": "segment", **body})
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def status(self, job_id: str) -> dict:
        response = self.client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, job_id: str, until=lambda status: status["state"] in FINAL, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if until(status):
                return status
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not get there in {timeout} s: {status}\n{self.log.read_text()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.client.close()

    def stop(self) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

"""The hub in its production shape, as separate processes: API processes without the embedded
worker or scheduler, worker processes, scheduler processes, and the simulators process; each
can be SIGKILLed and started again."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PYTHON = sys.executable
HUB = str(Path(sys.executable).parent / "hub")
# Where `drills` is importable from: the processes run in the drill's own directory, so that
# no `.env` of the checkout (which the hub reads from its working directory) reaches them.
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """One process of the cluster, started again after a kill with the same command."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    log: Path
    ready_url: str | None = None  # answers 200 once the process serves
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=dict(self.env),
                cwd=self.log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the process serves (when it has a URL to ask); raises when it died."""
        if self.ready_url is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited; see {self.log}")
            # Not listening yet (or busy starting): asked again shortly.
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready in {timeout:g} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no handler runs, no job is finished, no connection is closed cleanly."""
        if self.popen is not None and self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()
            self.kills += 1

    def terminate(self) -> None:
        if self.popen is not None and self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 120.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`); the exit status."""
        if self.popen is None:
            return None
        if self.alive():
            self.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


@dataclass
class Cluster:
    """The hub's processes over one database, against the simulators."""

    workdir: Path
    database_url: str
    admin_token: str
    apis: int = 2
    workers: int = 2
    schedulers: int = 2
    worker_concurrency: int = 4
    hub_env: Mapping[str, str] = field(default_factory=dict)
    api_ports: list[int] = field(default_factory=list)
    simulators: Process | None = None
    processes: list[Process] = field(default_factory=list)
    sim_env: dict[str, str] = field(default_factory=dict)

    def start_simulators(self, chaos_options: list[str]) -> dict[str, str]:
        """Start the simulators process; the environment it wrote for the hub."""
        self.api_ports = [free_port() for _ in range(self.apis)]
        env_file = self.workdir / "simulators.env"
        self.simulators = Process(
            "simulators",
            [
                PYTHON,
                "-m",
                "drills.simulators",
                "--hub-ports",
                ",".join(map(str, self.api_ports)),
                "--env-file",
                str(env_file),
                *chaos_options,
            ],
            {**os.environ, "PYTHONPATH": str(ROOT)},
            self.workdir / "simulators.log",
        )
        self.simulators.start()
        deadline = time.monotonic() + 60
        while not env_file.exists():
            if not self.simulators.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the simulators did not start; see {self.simulators.log}")
            time.sleep(0.1)
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            self.sim_env[key] = value
        return self.sim_env

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HUB_")}
        # Only the connectors' variables reach the hub; the DRILL_SIM_* addresses are ours.
        env |= {k: v for k, v in self.sim_env.items() if not k.startswith("DRILL_")}
        env |= {
            "HUB_DATABASE_URL": self.database_url,
            "HUB_ADMIN_TOKENS": f"drill:{self.admin_token}",
            **self.hub_env,
        }
        return env

    def migrate(self) -> None:
        """Bring the schema up once, as a deploy step does before the processes start."""
        subprocess.run(
            [HUB, "migrate"],
            env=self.environment(),
            cwd=self.workdir,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        env = self.environment()
        for index, port in enumerate(self.api_ports):
            argv = [HUB, "serve", "--no-worker", "--no-scheduler", "--port", str(port)]
            url = f"http://127.0.0.1:{port}/healthz"
            self.processes.append(self._process(f"api-{index}", argv, env, url))
        for index in range(self.workers):
            argv = [HUB, "worker", "--concurrency", str(self.worker_concurrency)]
            self.processes.append(self._process(f"worker-{index}", argv, env))
        for index in range(self.schedulers):
            self.processes.append(self._process(f"scheduler-{index}", [HUB, "scheduler"], env))
        for process in self.processes:
            process.start()
        for process in self.processes:
            process.wait_ready()

    def _process(
        self, name: str, argv: list[str], env: Mapping[str, str], ready_url: str | None = None
    ) -> Process:
        return Process(name, argv, env, self.workdir / f"{name}.log", ready_url)

    def api_url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.api_ports[index % len(self.api_ports)]}"

    def revive(self) -> list[str]:
        """Start again every process that is not running (died of its own accord or killed);
        their names."""
        revived = [p for p in self.processes if not p.alive()]
        for process in revived:
            process.start()
        return [p.name for p in revived]

    def stop_hub(self) -> dict[str, int | None]:
        """SIGTERM every hub process (each finishes the job in hand); their exit statuses."""
        # All at once: each worker may be finishing a job, and they finish side by side.
        for process in self.processes:
            process.terminate()
        return {p.name: p.stop() for p in self.processes}

    def stop(self) -> dict[str, int | None]:
        """Stop the hub's processes, then the simulators; the hub processes' exit statuses."""
        statuses = self.stop_hub()
        if self.simulators is not None:
            self.simulators.stop()
        return statuses

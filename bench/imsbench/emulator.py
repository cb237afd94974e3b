"""The adobe-emulator process (plain HTTP on loopback, or HTTPS with a throwaway test CA), and
its counters (`GET /__stats`)."""
from __future__ import annotations

import http.client
import json
import os
import re
import select
import ssl
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

from . import dotenv
from .errors import BenchError


class Emulator:
    READY = re.compile(r"adobe-emulator listening on (https?://[^\s]+)")

    def __init__(self, exe: str, workdir: Path, log_level: str, listen: str = "127.0.0.1:0",
                 tls_names: list[str] | None = None, name: str = "emulator", timeout_s: float = 120.0):
        """Starts it with `--env-file` in `workdir`; `tls_names` (possibly empty) turns on HTTPS
        with a certificate for those extra names, the CA written to `workdir/NAME-ca.pem`."""
        self.env_path = workdir / f"{name}.env"
        self.log_path = workdir / f"{name}.log"
        self.ca_path = workdir / f"{name}-ca.pem" if tls_names is not None else None
        self._log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["RUST_LOG"] = log_level  # its per-request log line costs time on every request
        argv = [exe, "--listen", listen, "--env-file", str(self.env_path), "--exit-on-stdin-eof"]
        if self.ca_path:
            argv += ["--tls-ca-out", str(self.ca_path)]
            for n in tls_names:
                argv += ["--tls-san", n]
        # --exit-on-stdin-eof: if this script dies, the emulator sees EOF and exits too
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.PIPE, env=env)
        self.base = self._wait_ready(timeout_s)
        # keep draining stdout so that a chatty emulator never blocks on a full pipe
        threading.Thread(target=self._drain, daemon=True).start()
        self.env = dotenv.read(self.env_path)
        u = urllib.parse.urlsplit(self.base)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port
        self.counters = StatsClient(self.host, self.port, self.ca_path)

    def _wait_ready(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                self._log.write(chunk)
                m = self.READY.search(buf.decode(errors="replace"))
                if m and b"\n" in buf[buf.find(b"listening"):]:
                    return m.group(1).rstrip("/")
            if self.proc.poll() is not None:
                break
        self.stop()
        raise BenchError(f"adobe-emulator did not print its ready line (log: {self.log_path})")

    def _drain(self) -> None:
        try:
            while True:
                chunk = self.proc.stdout.read1(65536)
                if not chunk:
                    return
                self._log.write(chunk)
        except (OSError, ValueError):
            return

    def stats(self) -> dict:
        return self.counters.stats()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class StatsClient:
    """`GET /__stats` over one kept-alive connection, straight to the emulator (never through the
    delay line). The emulator counts every connection and handshake, this one's too: they are
    subtracted here, so that two snapshots' difference is the subjects' alone."""

    def __init__(self, host: str, port: int, ca_path: Path | None):
        self.tls = ca_path is not None
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(ca_path))
            self.conn = http.client.HTTPSConnection(host, port, timeout=30, context=ctx)
        else:
            self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.opened = 0

    def _get(self) -> tuple[int, bytes]:
        if self.conn.sock is None:
            self.opened += 1
        self.conn.request("GET", "/__stats")
        r = self.conn.getresponse()
        return r.status, r.read()

    def stats(self) -> dict:
        try:
            status, body = self._get()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # the emulator closed an idle connection: one retry on a new one
            status, body = self._get()
        if status != 200:
            raise BenchError(f"GET /__stats -> {status}")
        s = json.loads(body)
        c = s.get("connections")
        if c:
            c["accepted"] -= self.opened
            if self.tls:
                c["tls_handshakes"] -= self.opened
        return s

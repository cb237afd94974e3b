"""The network the WAN section runs on: a network namespace of its own (so nothing on the host
is touched), and bench/delay_line.c in it, a TUN link that delays every packet by a fixed time
per direction, chosen by the address dialled. IMS and the API of each RTT get addresses of
their own, so each needs its own TCP connection and TLS handshake, as in production."""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

from .errors import BenchError

MARKER = "IMSBENCH_NETNS"  # set in the environment of the run re-executed inside the namespace
IFNAME = "imsbench0"
SUBNET = "10.77.0"
LOCAL_IP = f"{SUBNET}.1"  # the emulator listens here; the clients dial the other addresses


def inside() -> bool:
    return os.environ.get(MARKER) == "1"


def reexec_inside(argv: list[str]) -> None:
    """Replace this process with the same run inside a new network namespace: `unshare --net`
    as root, or with a user namespace (`--map-root-user`) otherwise. Returns only on failure."""
    unshare = shutil.which("unshare")
    if not unshare:
        raise BenchError("the WAN section needs unshare(1) (util-linux) for a network namespace; "
                         "or leave it out: --sections cold,warm,tokens,sizes")
    cmd = [unshare, "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run(cmd + ["true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise BenchError(f"cannot create a network namespace ({' '.join(cmd)}: "
                         f"{probe.stderr.strip()[:200]}); leave the WAN section out: "
                         "--sections cold,warm,tokens,sizes")
    env = dict(os.environ, **{MARKER: "1"})
    os.execve(unshare, cmd + ["--", sys.executable, *argv], env)


def loopback_up() -> None:
    """A new network namespace starts with `lo` down."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def address_plan(rtts_ms: list[float]) -> dict[float, dict[str, str]]:
    """RTT → {"ims": ip, "api": ip}: two addresses per RTT."""
    return {rtt: {"ims": f"{SUBNET}.{10 + 2 * i}", "api": f"{SUBNET}.{11 + 2 * i}"}
            for i, rtt in enumerate(rtts_ms)}


class DelayLine:
    """bench/delay_line.c: every packet to or from an address of an RTT waits RTT/2."""

    def __init__(self, exe, rtts_ms: list[float], log_path):
        self.plan = address_plan(rtts_ms)
        args = [f"{ip.rsplit('.', 1)[1]}={round(rtt * 1000 / 2)}"
                for rtt, hosts in self.plan.items() for ip in hosts.values()]
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([str(exe), IFNAME, LOCAL_IP, "24", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("ready"):
            self.stop()
            raise BenchError(f"delay_line did not start (log: {log_path})")
        self.realtime = "fifo" in line

    def addresses(self) -> list[str]:
        return [ip for hosts in self.plan.values() for ip in hosts.values()]

    def probe(self, port: int, count: int = 15) -> dict[float, dict]:
        """The round trip each RTT really gets, measured as TCP connect times (SYN → SYN-ACK is
        one round trip) to the server on LOCAL_IP:port through each IMS address."""
        out = {}
        for rtt, hosts in self.plan.items():
            xs = []
            for _ in range(count):
                t0 = time.perf_counter_ns()
                s = socket.create_connection((hosts["ims"], port), timeout=10)
                xs.append((time.perf_counter_ns() - t0) / 1e6)
                s.close()
            out[rtt] = {"median_ms": statistics.median(xs), "min_ms": min(xs), "max_ms": max(xs), "n": count}
        return out

    def syns(self) -> dict[str, int]:
        """TCP connection attempts (SYNs without ACK, a retransmitted one counted again) sent so
        far to each of the link's addresses."""
        self.proc.stdin.write(b"c")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().decode()
        counts = parse_syns(line)
        if counts is None:
            raise BenchError(f"delay_line answered {line.strip()[:80]!r} to a count request")
        return {ip: counts.get(int(ip.rsplit(".", 1)[1]), 0) for ip in self.addresses()}

    def stop(self) -> dict:
        """Stops it; returns its counts: packets forwarded, dropped, and sent over 100 µs late."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # EOF: it reports its counts and exits
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return parse_counts(Path(self._log.name).read_text(errors="replace"))


def parse_counts(log_text: str) -> dict:
    """delay_line's last words: "N packets forwarded, N dropped, N sent over 100 us late"."""
    m = None
    for m in re.finditer(r"(\d+) packets forwarded, (\d+) dropped, (\d+) sent over 100 us late", log_text):
        pass
    if not m:
        return {}
    return {"forwarded": int(m.group(1)), "dropped": int(m.group(2)), "late": int(m.group(3))}


def parse_syns(line: str) -> dict[int, int] | None:
    """delay_line's "syns 14=3 15=2" line: {last octet of the remote address: SYNs}. None for any
    other line. Pure (bench/tests)."""
    words = line.split()
    if not words or words[0] != "syns":
        return None
    out = {}
    for w in words[1:]:
        octet, _, n = w.partition("=")
        if not (octet.isdigit() and n.isdigit()):
            return None
        out[int(octet)] = int(n)
    return out

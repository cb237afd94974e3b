"""Minimal HTTP clients: the physical limits the subjects are held against. Each sends the same
request the subjects send, with a prebuilt request and a bare response reader, so that what is
left is the network, TLS and the server. Python, so that on loopback they pay the same
interpreter costs as the ActionLoop driver that times the subjects."""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse


class Reader:
    """HTTP/1.1 responses from a (TLS) socket: head, then Content-Length or chunked body."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _take_line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def response(self) -> tuple[int, dict, bytes]:
        while (i := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(self.buf[:i]).decode("latin-1")
        del self.buf[:i + 4]
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int(self._take_line().split(b";")[0], 16)
                if size == 0:
                    while self._take_line():
                        pass
                    break
                parts.append(self._take(size))
                self._take(2)
            body = b"".join(parts)
        else:
            body = self._take(int(hdrs.get("content-length", "0")))
        return status, hdrs, body


def request_bytes(method: str, host_port: str, path: str, headers: dict, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host_port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


class S2sRequests:
    """The two requests of the OAuth S2S → AEM quota flow, as bytes, for one IMS and one API
    origin: the token POST (the same form fields the action and Adobe's sample send) and the
    quota GET (the same headers) with a token filled in."""

    def __init__(self, params: dict):
        self.ims = urllib.parse.urlsplit(params["IMS_BASE_URL"])
        self.api = urllib.parse.urlsplit(params["AEM_DATA_SERVICE_BASE_URL"])
        form = urllib.parse.urlencode({"grant_type": "client_credentials",
                                       "client_id": params["OAUTHS2S_CLIENT_ID"],
                                       "client_secret": params["OAUTHS2S_CLIENT_SECRET"],
                                       "scope": params["OAUTHS2S_CECREDENTIALS_METASCOPES"]}).encode()
        self.token_request = request_bytes(
            "POST", self.ims.netloc, self.ims.path.rstrip("/") + "/ims/token/v3",
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}, form)
        org, cid = params["IMS_ORG_ID"], params["OAUTHS2S_CLIENT_ID"]
        self.quota_path = (self.api.path.rstrip("/") + "/adobe/stats/statistics/contentRequestsQuota?"
                           + urllib.parse.urlencode({"imsOrgId": org, "current": "true"}, safe="@"))
        self.quota_headers = {"X-Adobe-Accept-Experimental": "1", "x-gw-ims-org-id": org, "X-Api-Key": cid,
                              "Accept": "application/json"}

    def quota_request(self, token: str) -> bytes:
        return request_bytes("GET", self.api.netloc, self.quota_path,
                             {**self.quota_headers, "Authorization": f"Bearer {token}"})


def token_of(status: int, body: bytes) -> str | None:
    if status != 200:
        return None
    try:
        return json.loads(body).get("access_token")
    except ValueError:
        return None


class TlsDialer:
    """New TCP + TLS connections with the test CA, TCP_NODELAY like every subject."""

    def __init__(self, ca_path):
        self.ctx = ssl.create_default_context(cafile=str(ca_path))

    def open(self, host: str, port: int):
        sock = socket.create_connection((host, port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.ctx.wrap_socket(sock, server_hostname=host)  # handshake done on return


def exchange(tls, request: bytes) -> tuple[int, bytes]:
    tls.sendall(request)
    status, _, body = Reader(tls).response()
    return status, body


class ColdLimit:
    """The least a cold activation can take: per host a new TCP connection, a TLS 1.3 handshake
    and the request, IMS first and then the API (≈ 6 RTT). With `overlap`, the API's connection
    and handshake run in a thread while the token is fetched (≈ 4 RTT): what an action could
    reach by opening its API connection early."""

    def __init__(self, dialer: TlsDialer, params: dict, overlap: bool = False):
        self.dialer, self.req, self.overlap = dialer, S2sRequests(params), overlap

    def run(self) -> tuple[int, bool]:
        ims, api = self.req.ims, self.req.api
        conns = []
        t0 = time.perf_counter_ns()
        try:
            early = {}
            th = None
            if self.overlap:
                def dial():
                    try:
                        early["tls"] = self.dialer.open(api.hostname, api.port)
                    except OSError as e:
                        early["error"] = e
                th = threading.Thread(target=dial)
                th.start()
            t = self.dialer.open(ims.hostname, ims.port)
            conns.append(t)
            token = token_of(*exchange(t, self.req.token_request))
            if th:
                th.join()
                if "error" in early:
                    raise early["error"]
                a = early["tls"]
            else:
                a = self.dialer.open(api.hostname, api.port)
            conns.append(a)
            status, _ = exchange(a, self.req.quota_request(token or "none"))
            t1 = time.perf_counter_ns()
            return t1 - t0, bool(token) and status == 200
        finally:
            for c in conns:
                c.close()


class WarmLimit:
    """The least a warm activation can take: the API request on an open TLS connection, with a
    token fetched beforehand (≈ 1 RTT)."""

    def __init__(self, dialer: TlsDialer, params: dict):
        self.dialer, self.req = dialer, S2sRequests(params)
        ims, api = self.req.ims, self.req.api
        t = dialer.open(ims.hostname, ims.port)
        try:
            token = token_of(*exchange(t, self.req.token_request))
        finally:
            t.close()
        if not token:
            raise ConnectionError("the warm limit client got no token")
        self.request = self.req.quota_request(token)
        self.tls = dialer.open(api.hostname, api.port)
        self.reader = Reader(self.tls)
        self.n = 0

    def activate(self) -> tuple[int, bool]:
        self.n += 1
        t0 = time.perf_counter_ns()
        self.tls.sendall(self.request)
        status, hdrs, _ = self.reader.response()
        t1 = time.perf_counter_ns()
        if hdrs.get("connection", "").lower() == "close":
            self.tls.close()
            self.tls = self.dialer.open(self.req.api.hostname, self.req.api.port)
            self.reader = Reader(self.tls)
        return t1 - t0, status == 200

    def close(self) -> None:
        self.tls.close()


class RawHttpClient:
    """The bare-request limit on loopback: one keep-alive TCP connection, a prebuilt request, a
    response read by Content-Length (or chunked), nothing else."""

    def __init__(self, host: str, port: int, request: bytes):
        self.addr = (host, port)
        self.request = request
        self.sock = None
        self._connect()

    def _connect(self) -> None:
        if self.sock:
            self.sock.close()
        self.sock = socket.create_connection(self.addr, timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = Reader(self.sock)

    def request_once(self) -> tuple[int, int, bytes]:
        t0 = time.perf_counter_ns()
        self.sock.sendall(self.request)
        status, hdrs, body = self.reader.response()
        t1 = time.perf_counter_ns()
        if hdrs.get("connection", "").lower() == "close":
            self._connect()
        return t1 - t0, status, body


class StdlibHttpClient:
    """Reference only: the same request with http.client (keep-alive), Python's stock client."""

    def __init__(self, host: str, port: int, path: str, headers: dict):
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.path, self.headers = path, headers

    def request_once(self) -> tuple[int, int, bytes]:
        t0 = time.perf_counter_ns()
        self.conn.request("GET", self.path, headers=self.headers)
        r = self.conn.getresponse()
        body = r.read()
        t1 = time.perf_counter_ns()
        return t1 - t0, r.status, body

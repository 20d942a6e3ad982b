"""A tiny HTTP/1.1 client over a Unix socket (keep-alive), for the API tests."""
import http.client
import json
import os
import socket
import subprocess
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        # The socket file appears at bind(); listen() follows a moment later.
        deadline = time.monotonic() + 2
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            try:
                self.sock.connect(self.path)
                return
            except ConnectionRefusedError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)


class Api:
    def __init__(self, sock):
        self.sock = sock
        self.conn = UnixHTTPConnection(sock)

    def call(self, method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        text = r.read().decode()
        return r.status, (json.loads(text) if text else None)

    def close(self):
        self.conn.close()


def start_ember(ember, sock, *args, **kw):
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen([str(ember), "--api-sock", str(sock), *map(str, args)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, **kw)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ember did not open its socket: {p.stderr.read()!r}")
        time.sleep(0.005)
    return p

"""The host side of ember's vsock (Firecracker's scheme), for the tests: an
echo server on <uds_path>_<port> for guest-initiated connections, and a
client that connects to uds_path with "CONNECT <port>\\n"."""
import os
import socket
import threading


class EchoServer:
    """Listens on @path; echoes every connection in its own thread until
    its peer's EOF (or the connection breaks)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)  # a jailed ember (uid 65534) connects to it
        self.sock.listen(256)
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _serve(c):
        with c:
            try:
                while d := c.recv(65536):
                    c.sendall(d)
            except OSError:
                return

    def close(self):
        self.sock.close()


def host_connect(uds, line, timeout=20):
    """Connect to ember's uds_path and send @line (the handshake, or not)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(line)
    return s


def read_line(s):
    out = b""
    while not out.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            break
        out += d
    return out


def echo_roundtrip(s, data, timeout):
    """Send @data on @s while reading back as many bytes; returns them."""
    got = bytearray()

    def reader():
        while len(got) < len(data):
            d = s.recv(65536)
            if not d:
                return
            got.extend(d)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    t.join(timeout)
    return bytes(got)

"""The logger as Firecracker's docs/logger.md and swagger define it: a log
FIFO made before any reader exists (the Go SDK's LogFifo mode), Firecracker's
line format, level names in any case, show_level, show_log_origin and
module, PUT /logger's rules, garbage refused with a clear 400, the audit
trail of API requests, and a reader that stops reading never stalling ember.
"""
import datetime
import json
import os
import re
import signal
import time

import pytest

from api_client import Api, start_ember
from conftest import JAILED, read_until

# 2026-11-30T15:31:31.123456789 [id:thread(:LEVEL)(:file:line)] message
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9}) "
                  r"\[([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)"
                  r"(?::(ERROR|WARN|INFO|DEBUG|TRACE))?(?::([\w./-]+\.c):(\d+))?\] (.*)$")


def parse(text):
    """Every line of @text as a match of LINE; fails on a malformed one."""
    lines = []
    for raw in text.splitlines():
        m = LINE.match(raw)
        assert m, f"malformed log line: {raw!r}"
        lines.append(m)
    return lines


def assert_recent(m):
    """The timestamp is the wall clock now: local time (UTC in a jail
    without /etc/localtime)."""
    at = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    now_local = datetime.datetime.now()
    now_utc = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert min(abs((at - now_local).total_seconds()),
               abs((at - now_utc).total_seconds())) < 120, m.group(0)


def fifo(path):
    os.mkfifo(path)
    os.chmod(path, 0o666)  # jailed: ember runs as uid 65534
    return path


def read_fifo(fd, want, timeout=10):
    """Read from the non-blocking FIFO @fd until regex @want matches."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            chunk = b""
        out += chunk
        if re.search(want, out.decode(errors="replace"), re.M):
            return out.decode()
        if not chunk:
            time.sleep(0.01)
    raise AssertionError(f"no {want!r} in {out!r}")


def wait_for(path, want, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if re.search(want, text, re.M):
            return text
        time.sleep(0.01)
    raise AssertionError(f"no {want!r} in {path}: {text!r}")


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "api.sock")


@pytest.fixture
def ember_api(ember, sock):
    """An ember with its API and nothing configured."""
    procs = []

    def start(*args):
        p = start_ember(ember, sock, *args)
        procs.append(p)
        return p, Api(sock)
    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_cli_log_fifo_opened_before_any_reader(ember, sock, tmp_path):
    """--log-path naming a FIFO nobody reads yet: ember starts (a write-only
    open would fail with ENXIO); a reader that comes later reads whole,
    well-formed lines in Firecracker's format."""
    log = fifo(tmp_path / "log.fifo")
    p = start_ember(ember, sock, "--log-path", log, "--id", "fifo-vm")
    try:
        api = Api(sock)
        assert api.call("GET", "/")[0] == 200
        assert api.call("PUT", "/nope", {})[0] == 400
        fd = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
        try:
            text = read_fifo(fd, r"Status code: 400 Bad Request")
        finally:
            os.close(fd)
        api.close()
    finally:
        p.kill()
        p.wait()
    lines = parse(text)
    assert all(m.group(3) == "fifo-vm" for m in lines), text
    assert all(m.group(5) is None and m.group(6) is None for m in lines), text  # the defaults
    assert_recent(lines[-1])
    msgs = [m.group(8) for m in lines]
    assert 'The API server received a GET request on "/".' in msgs, msgs
    assert 'The request GET "/" was executed successfully. Status code: 200 OK.' in msgs, msgs
    assert any(x.startswith('The request PUT "/nope" failed. Status code: 400 Bad Request. '
                            'Message: Invalid request method and/or path') for x in msgs), msgs


def test_oversized_body_is_in_the_audit_trail(ember_api, tmp_path):
    """A body over the payload limit is refused on the HTTP thread, before
    the VMM thread sees the request; its refusal is logged in the same words
    and at the same level as every other failed request."""
    log = tmp_path / "ember.log"
    p, api = ember_api("--log-path", str(log), "--http-api-max-payload-size", "1000")
    st, body = api.call("PUT", "/machine-config", {"vcpu_count": 1, "pad": "x" * 2000})
    assert st == 400 and "larger than the limit of 1000" in body["fault_message"], body
    text = wait_for(log, r"Status code: 400 Bad Request")
    lines = [m for m in parse(text) if "PUT \"/machine-config\" failed" in m.group(8)]
    assert len(lines) == 1, text
    assert lines[0].group(8).startswith(
        'The request PUT "/machine-config" failed. Status code: 400 Bad Request. '
        'Message: Request payload with size'), text
    assert api.call("GET", "/")[0] == 200  # and the API goes on


def test_put_logger_fifo_opened_before_any_reader(ember_api, tmp_path):
    log = fifo(tmp_path / "log.fifo")
    p, api = ember_api()
    st, body = api.call("PUT", "/logger", {"log_path": str(log), "level": "Debug",
                                           "show_level": True, "show_log_origin": True})
    assert st == 204, body
    assert api.call("GET", "/machine-config")[0] == 200
    fd = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
    try:
        text = read_fifo(fd, r'GET "/machine-config" was executed successfully')
    finally:
        os.close(fd)
    lines = parse(text)
    done = [m for m in lines if "was executed successfully" in m.group(8)]
    assert done[-1].group(5) == "INFO" and done[-1].group(6) == "api/routes.c", text
    assert int(done[-1].group(7)) > 0


def test_reader_that_stops_reading_never_stalls_ember(ember_api, guest, tmp_path):
    """A reader that opens the log FIFO and then never reads: ember keeps
    answering and boots a guest; the lines it cannot write are dropped and
    counted (metrics: Firecracker's logger.missed_log_count). A reader that
    comes back reads whole lines."""
    log = fifo(tmp_path / "log.fifo")
    metrics = tmp_path / "metrics.json"
    p, api = ember_api("--log-path", log, "--level", "debug")
    stuck = os.open(log, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read
    try:
        assert api.call("PUT", "/metrics", {"metrics_path": str(metrics)})[0] == 204
        t0 = time.monotonic()
        big = {"kernel_image_path": str(guest("hello.elf")), "boot_args": "cad=1 " + "x" * 400}
        for _ in range(400):  # ~1 KiB of log each: far past the FIFO's 64 KiB
            assert api.call("PUT", "/boot-source", big)[0] == 204
        assert time.monotonic() - t0 < 60
        assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")),
                                                "boot_args": "cad=1"})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
        assert api.call("GET", "/")[1]["state"] == "Running"
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        # Each metrics line counts what was dropped since the line before.
        lines = [json.loads(line) for line in metrics.read_text().splitlines()]
        assert sum(m["logger"]["missed_log_count"] for m in lines) > 0, lines
        # The reader drains: everything in the FIFO is whole lines.
        text = b""
        while True:
            try:
                chunk = os.read(stuck, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            text += chunk
        assert text.endswith(b"\n")
        parse(text.decode())
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        assert p.wait(timeout=20) == 0
    finally:
        os.close(stuck)
        api.close()


def test_reader_that_goes_away_never_stalls_ember(ember_api, tmp_path):
    log = fifo(tmp_path / "log.fifo")
    p, api = ember_api()
    fd = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
    assert api.call("PUT", "/logger", {"log_path": str(log)})[0] == 204
    os.close(fd)
    for _ in range(300):
        assert api.call("GET", "/")[0] == 200
    assert p.poll() is None
    api.close()


# level -> (the failed request's Error line, the Info lines) expected
LEVELS = [("Error", True, False), ("error", True, False), ("ERROR", True, False),
          ("Warning", True, False), ("warning", True, False), ("Warn", True, False),
          ("wArN", True, False), ("Info", True, True), ("INFO", True, True),
          ("debug", True, True), ("Trace", True, True), ("Off", False, False),
          ("oFF", False, False)]


@pytest.mark.parametrize("level,errors,infos", LEVELS, ids=[x[0] for x in LEVELS])
def test_level_names_in_any_case(ember_api, tmp_path, level, errors, infos):
    log = tmp_path / "ember.log"
    p, api = ember_api()
    assert api.call("PUT", "/logger", {"log_path": str(log), "level": level})[0] == 204
    assert api.call("GET", "/version")[0] == 200
    assert api.call("GET", "/nope")[0] == 400
    # A last line every level but Off writes, to know the others are in.
    assert api.call("PUT", "/logger", {"level": "Error"})[0] == 204
    assert api.call("GET", "/nope2")[0] == 400
    text = wait_for(log, r'"/nope2" failed')
    msgs = [m.group(8) for m in parse(text)]
    assert any('GET "/nope" failed' in x for x in msgs) == errors, msgs
    assert any('GET "/version" was executed successfully' in x for x in msgs) == infos, msgs


def test_cli_level_names_in_any_case(ember, tmp_path):
    log = tmp_path / "ember.log"
    sock = str(tmp_path / "s")
    for level, infos in [("wArNiNg", False), ("iNfO", True)]:
        log.unlink(missing_ok=True)
        p = start_ember(ember, sock, "--log-path", log, "--level", level)
        try:
            api = Api(sock)
            api.call("GET", "/")
            api.call("GET", "/nope")
            text = wait_for(log, r'"/nope" failed')
            assert ('GET "/" was executed successfully' in text) == infos, text
            api.close()
        finally:
            p.kill()
            p.wait()


def test_level_left_out_goes_back_to_info(ember_api, tmp_path):
    """Firecracker's update rule: a PUT /logger without level sets Info;
    the format fields left out keep their value."""
    log = tmp_path / "ember.log"
    p, api = ember_api()
    assert api.call("PUT", "/logger", {"log_path": str(log), "level": "Error",
                                       "show_level": True})[0] == 204
    assert api.call("PUT", "/logger", {"show_log_origin": True})[0] == 204
    api.call("GET", "/")
    text = wait_for(log, r'GET "/" was executed')
    m = parse(text)[-1]
    assert m.group(5) == "INFO" and m.group(6) == "api/routes.c", m.group(0)


@pytest.mark.parametrize("show_level,show_origin", [(False, False), (True, False),
                                                    (False, True), (True, True)])
def test_show_level_and_origin_change_the_line(ember_api, tmp_path, show_level, show_origin):
    log = tmp_path / "ember.log"
    p, api = ember_api("--id", "fmt-vm")
    assert api.call("PUT", "/logger", {"log_path": str(log), "show_level": show_level,
                                       "show_log_origin": show_origin})[0] == 204
    api.call("GET", "/nope")
    text = wait_for(log, r'"/nope" failed')
    m = [x for x in parse(text) if '"/nope" failed' in x.group(8)][0]
    assert m.group(3) == "fmt-vm"
    assert m.group(5) == ("ERROR" if show_level else None), m.group(0)
    assert (m.group(6) == "api/routes.c") == show_origin, m.group(0)
    assert (m.group(7) is not None) == show_origin


def test_cli_show_flags(ember, tmp_path):
    log = tmp_path / "ember.log"
    sock = str(tmp_path / "s")
    p = start_ember(ember, sock, "--log-path", log, "--show-level", "--show-log-origin")
    try:
        api = Api(sock)
        api.call("GET", "/")
        text = wait_for(log, r'GET "/" was executed')
        api.close()
    finally:
        p.kill()
        p.wait()
    m = [x for x in parse(text) if 'GET "/" was executed' in x.group(8)][0]
    assert m.group(5) == "INFO" and m.group(6) == "api/routes.c", m.group(0)


@pytest.mark.parametrize("module,api_lines", [("api", True), ("api/routes", True),
                                              ("vmm", False), ("vmm::vm", False),
                                              ("nothing/here", False)])
def test_module_filters_by_source_path(ember_api, guest, tmp_path, module, api_lines):
    log = tmp_path / "ember.log"
    p, api = ember_api()
    assert api.call("PUT", "/logger", {"log_path": str(log), "module": module,
                                       "show_log_origin": True})[0] == 204
    api.call("GET", "/")
    assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")),
                                            "boot_args": "cad=1"})[0] == 204
    assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
    assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
    assert p.wait(timeout=20) == 0
    lines = parse(log.read_text())
    files = {m.group(6) for m in lines}
    want = module.replace("::", "/")
    assert all(f.startswith(want) for f in files), files
    assert any(f.startswith("api/") for f in files) == api_lines, files
    if module.startswith("vmm"):
        # "VM stopping ..." (vmm/vm.c) passes both vmm and vmm::vm.
        assert any("VM stopping" in m.group(8) for m in lines), files


def test_cli_module(ember, tmp_path):
    log = tmp_path / "ember.log"
    sock = str(tmp_path / "s")
    p = start_ember(ember, sock, "--log-path", log, "--module", "vmm")
    try:
        api = Api(sock)
        api.call("GET", "/nope")
        api.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
    finally:
        p.kill()
        p.wait()
    text = log.read_text()
    assert "/nope" not in text and "received signal" in text, text


def test_put_logger_before_boot_only(ember_api, guest, tmp_path):
    """Firecracker: PUT /logger as often as wanted before boot, never after."""
    log = tmp_path / "ember.log"
    p, api = ember_api()
    for level in ("Debug", "Info", "Warning"):
        assert api.call("PUT", "/logger", {"log_path": str(log), "level": level})[0] == 204
    assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")),
                                            "boot_args": "cad=1"})[0] == 204
    assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    other = tmp_path / "other.log"
    st, body = api.call("PUT", "/logger", {"log_path": str(other), "level": "Debug"})
    assert st == 400, body
    assert "not supported after starting the microVM" in body["fault_message"]
    assert not other.exists()
    assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
    assert p.wait(timeout=20) == 0


def garbage_cases(tmp_path):
    file = tmp_path / "file"
    file.write_text("")
    return [
        ({"level": "Loud"}, "unknown variant `Loud` for field `level`"),
        ({"level": ""}, "unknown variant `` for field `level`"),
        ({"level": "Warnings"}, "unknown variant `Warnings`"),
        ({"level": 5}, "invalid type for field `level`"),
        ({"level": True}, "invalid type for field `level`"),
        ({"show_level": "yes"}, "invalid type for field `show_level`"),
        ({"show_log_origin": 1}, "invalid type for field `show_log_origin`"),
        ({"module": 7}, "invalid type for field `module`"),
        ({"module": ["api"]}, "invalid type for field `module`"),
        ({"module": "m" * 256}, "module must be at most 255 characters"),
        ({"log_path": 5}, "invalid type for field `log_path`"),
        ({"log_path": ""}, "log_path must not be empty"),
        ({"log_path": str(tmp_path / "no" / "dir" / "log")},
         "cannot be opened: No such file or directory"),
        ({"log_path": str(tmp_path)}, "cannot be opened: Is a directory"),
        ({"log_path": str(file / "below-a-file")}, "cannot be opened: Not a directory"),
        # Not even root may create a file in /sys (no /sys at all in a jail).
        ({"log_path": "/sys/ember.log"},
         "cannot be opened: " + ("No such file" if JAILED else "Permission denied")),
        ({"log_level": "Info"}, "unknown field `log_level`"),
    ]


def test_garbage_gets_400_and_changes_nothing(ember_api, tmp_path):
    log = tmp_path / "ember.log"
    p, api = ember_api()
    assert api.call("PUT", "/logger", {"log_path": str(log), "level": "Info"})[0] == 204
    for body, words in garbage_cases(tmp_path):
        # Each also names a level and the format: none of it may apply.
        full = {"level": "Off", "show_level": True, **body}
        st, resp = api.call("PUT", "/logger", full)
        assert st == 400, (body, resp)
        assert words in resp["fault_message"], (body, resp)
    for raw in ("[1]", '"Info"', "{", "null"):
        assert api.call("PUT", "/logger", raw=raw)[0] == 400, raw
    api.call("GET", "/")
    text = wait_for(log, r'GET "/" was executed')
    lines = parse(text)
    assert all(m.group(5) is None for m in lines)  # show_level never applied
    # Each refusal is in the audit trail at Error, with its fault_message.
    assert sum('PUT "/logger" failed. Status code: 400 Bad Request. Message: ' in m.group(8)
               for m in lines) == len(garbage_cases(tmp_path)) + 4
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("args,words", [
    (["--level", "loud"], "--level must be Error, Warning, Info, Debug, Trace or Off"),
    (["--level", ""], "--level must be"),
    (["--module", "m" * 256], "--module must be at most 255 characters"),
    (["--log-path", "/nonexistent/dir/log"], "cannot open --log-path"),
    (["--log-path", "{tmp}"], "Is a directory"),
    (["--show-level=yes"], "show-level"),
], ids=["level", "empty level", "module", "missing dir", "directory", "show-level value"])
def test_cli_garbage(ember, tmp_path, args, words):
    from conftest import run_ember
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = run_ember(ember, "--api-sock", tmp_path / "s", *argv, timeout=30)
    assert r.returncode == 64, r.stderr
    assert words in r.stderr, r.stderr


def test_request_body_in_the_log_is_bounded_and_escaped(ember_api, tmp_path):
    """A request's body is logged quoted (no line of its own can be forged
    in it) and cut short: the line stays under PIPE_BUF."""
    log = tmp_path / "ember.log"
    p, api = ember_api()
    assert api.call("PUT", "/logger", {"log_path": str(log)})[0] == 204
    # Raw bytes: the body is logged as it came, before any JSON parsing.
    forged = "\n2026-01-01T00:00:00.000000000 [x:main] forged\n"
    raw = '{"kernel_image_path": "' + forged + "k" * 40000 + '"}'
    api.call("PUT", "/boot-source", raw=raw)
    text = wait_for(log, r'PUT "/boot-source" failed')
    lines = parse(text)
    assert not any(m.group(8) == "forged" for m in lines)
    got = [m for m in lines if "received a PUT request on \"/boot-source\"" in m.group(8)]
    assert got and got[0].group(8).endswith('...".'), got
    assert "\\n2026-01-01" in got[0].group(8)
    assert all(len(m.group(0)) < 4096 for m in lines)

"""The SSRF guard: what it refuses, what the allow-list lets through, and fetching.

Fetches go to a real HTTP server on 127.0.0.1 (allow-listed); host names are faked by
patching ``socket.getaddrinfo``. Nothing here touches the internet.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from server.netguard import (
    FetchFailed,
    Pool,
    UnsafeURL,
    check_url,
    fetch,
    request,
    safe_filename,
)

LOCAL = ["127.0.0.1/32"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
STOP = threading.Event()  # set at teardown so slow handlers stop waiting


class Handler(BaseHTTPRequestHandler):
    """One route per behaviour the tests need."""

    protocol_version = "HTTP/1.0"  # without Content-Length the body ends when we close

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        port = self.server.server_address[1]
        routes = {
            "/small": lambda: self._send(
                200,
                b"hello",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Disposition", 'attachment; filename="greeting.txt"'),
                ],
            ),
            "/files/photo.png": lambda: self._send(200, PNG, [("Content-Type", "image/png")]),
            "/unicode-name": lambda: self._send(
                200, b"x", [("Content-Disposition", "attachment; filename*=UTF-8''caf%C3%A9.txt")]
            ),
            "/evil-name": lambda: self._send(
                200, b"x", [("Content-Disposition", 'attachment; filename="../../etc/passwd"')]
            ),
            "/big": lambda: self._send(200, b"x" * 2000),
            "/big-unannounced": lambda: self._send(200, b"x" * 2000, length=False),
            "/host": lambda: self._send(200, self.headers["Host"].encode()),
            "/redirect-relative": lambda: self._redirect("/small"),
            "/redirect-private": lambda: self._redirect(f"http://127.0.0.2:{port}/small"),
            "/redirect-file": lambda: self._redirect("file:///etc/passwd"),
            "/redirect-loop": lambda: self._redirect("/redirect-loop"),
            "/missing": lambda: self._send(404, b"no such thing"),
            "/slow": self._slow_headers,
            "/dribble": self._dribble,
        }
        routes.get(self.path, lambda: self._send(404, b""))()

    def _send(self, status: int, body: bytes, headers=(), *, length: bool = True) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _slow_headers(self) -> None:
        STOP.wait(5)
        self._quietly(lambda: self._send(200, b"late"))

    def _dribble(self) -> None:
        """Headers at once, then a byte every 0.1 s: no single read is slow, the whole is."""
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            if STOP.wait(0.1) or not self._quietly(lambda: self.wfile.write(b"x")):
                return

    @staticmethod
    def _quietly(action) -> bool:
        try:
            action()
            return True
        except OSError:  # the client gave up, as the test wanted
            return False


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """Base URL of the local test server."""
    STOP.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    STOP.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def fake_dns(monkeypatch) -> dict[str, list[str]]:
    """Names added to the returned dict resolve to their addresses (a list, or a function
    giving one per look-up); other names resolve as usual."""
    names: dict[str, list[str] | Callable[[], list[str]]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            return real(host, port, *args, **kwargs)
        answer = names[host]
        addresses = answer() if callable(answer) else answer
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def get(url: str, *, max_bytes: int = 1000, timeout: float = 5, allow=None):
    return fetch(url, max_bytes=max_bytes, timeout=timeout, allow=LOCAL if allow is None else allow)


# --- check_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, refused",
    [
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://localhost:7308/api", "127.0.0.1"),
        ("http://10.1.2.3/", "10.1.2.3"),
        ("http://192.168.0.1/", "192.168.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::1]/", "::1"),
        ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
        ("http://100.64.1.1/", "100.64.1.1"),
        ("http://0.0.0.0/", "0.0.0.0"),
        ("http://224.0.0.1/", "224.0.0.1"),
        ("https://[fe80::1]/", "fe80::1"),
        # IPv6 that carries an IPv4 address: a 6to4 relay or a NAT64 translator delivers there.
        ("http://[2002:7f00:1::]/", "127.0.0.1"),
        ("http://[2002:a9fe:a9fe::]/", "169.254.169.254"),
        ("http://[2002:0a01:0203::1]/", "10.1.2.3"),
        ("http://[64:ff9b::7f00:1]/", "127.0.0.1"),
        ("http://[64:ff9b::a9fe:a9fe]/", "169.254.169.254"),
        ("http://[64:ff9b:1::a01:203]/", "64:ff9b:1::a01:203"),
        ("http://[::7f00:1]/", "127.0.0.1"),
    ],
)
def test_refuses_internal_addresses(url, refused):
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, allow=[])
    error = caught.value
    assert (error.status, error.code) == (422, "unsafe_url")
    assert refused in error.message
    assert "KABAR_FETCH_ALLOW" in error.message


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/file",
        "gopher://example.com/",
        "javascript:alert(1)",
        "http://",
        "not a url",
    ],
)
def test_refuses_other_schemes_and_non_urls(url):
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, allow=[])
    assert caught.value.code == "unsafe_url"


def test_allow_list_lets_a_network_through():
    check_url("http://127.0.0.1:9/", allow=["127.0.0.1/32"])
    check_url("http://10.20.30.40/", allow=["10.0.0.0/8"])
    check_url("http://[::1]/", allow=["::1"])
    check_url("http://[::ffff:10.0.0.1]/", allow=["10.0.0.0/8"])  # same host, IPv6 form
    check_url("http://[2002:0a00:0001::]/", allow=["10.0.0.0/8"])  # and as 6to4
    with pytest.raises(UnsafeURL):
        check_url("http://127.0.0.2/", allow=["127.0.0.1/32"])


def test_refuses_a_name_that_resolves_to_a_private_address(fake_dns):
    fake_dns["intranet.example"] = ["10.0.0.5"]
    with pytest.raises(UnsafeURL) as caught:
        check_url("https://intranet.example/report.pdf", allow=[])
    assert "the host intranet.example resolves to 10.0.0.5" in caught.value.message
    assert "intranet.example to KABAR_FETCH_ALLOW" in caught.value.message


def test_refuses_a_name_when_any_of_its_addresses_is_private(fake_dns):
    fake_dns["mixed.example"] = ["93.184.216.34", "192.168.1.10"]
    with pytest.raises(UnsafeURL) as caught:
        check_url("http://mixed.example/", allow=[])
    assert "192.168.1.10" in caught.value.message


def test_6to4_and_nat64_of_a_public_address_pass(fake_dns):
    check_url("http://[2002:5db8:d822::1]/", allow=[])  # 93.184.216.34 through 6to4
    check_url("http://[64:ff9b::5db8:d822]/", allow=[])  # and through NAT64
    fake_dns["v6only.example"] = ["64:ff9b::7f00:1"]
    with pytest.raises(UnsafeURL) as caught:
        check_url("http://v6only.example/", allow=[])
    assert "127.0.0.1" in caught.value.message and "NAT64" in caught.value.message


def test_public_addresses_pass(fake_dns):
    fake_dns["public.example"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    check_url("https://public.example/a.png", allow=[])
    check_url("http://8.8.8.8/", allow=[])


def test_allow_list_lets_a_host_name_through(fake_dns):
    fake_dns["files.internal"] = ["10.0.0.5"]
    check_url("http://files.internal/x", allow=["Files.Internal"])
    with pytest.raises(UnsafeURL):
        check_url("http://files.internal/x", allow=["other.internal"])


def test_an_unresolvable_host_fails_to_fetch(fake_dns):
    fake_dns["nowhere.invalid"] = []
    with pytest.raises(FetchFailed) as caught:
        check_url("http://nowhere.invalid/", allow=[])
    assert caught.value.code == "fetch_failed"


# --- fetch ----------------------------------------------------------------------------


def test_fetches_a_small_body(server):
    fetched = get(f"{server}/small")
    assert fetched.data == b"hello"
    assert fetched.content_type == "text/plain"
    assert fetched.filename == "greeting.txt"
    assert fetched.final_url == f"{server}/small"


def test_filename_from_the_url_path_and_rfc_5987(server):
    fetched = get(f"{server}/files/photo.png")
    assert (fetched.data, fetched.content_type, fetched.filename) == (PNG, "image/png", "photo.png")
    assert get(f"{server}/unicode-name").filename == "café.txt"
    assert get(f"{server}/evil-name").filename == "passwd"


def test_fetching_a_private_server_needs_the_allow_list(server):
    with pytest.raises(UnsafeURL):
        get(f"{server}/small", allow=[])


@pytest.mark.parametrize("path", ["/big", "/big-unannounced"])
def test_refuses_a_body_over_max_bytes(server, path):
    with pytest.raises(FetchFailed) as caught:
        get(f"{server}{path}", max_bytes=1000)
    assert (caught.value.status, caught.value.code) == (422, "fetch_too_large")
    assert get(f"{server}{path}", max_bytes=2000).data == b"x" * 2000  # exactly the limit


def test_follows_a_redirect(server):
    fetched = get(f"{server}/redirect-relative")
    assert fetched.data == b"hello"
    assert fetched.final_url == f"{server}/small"


def test_checks_every_redirect_hop(server):
    with pytest.raises(UnsafeURL) as caught:
        get(f"{server}/redirect-private")  # 127.0.0.1 is allowed, 127.0.0.2 is not
    assert "127.0.0.2" in caught.value.message
    with pytest.raises(UnsafeURL):
        get(f"{server}/redirect-file")


def test_stops_after_five_redirects(server):
    with pytest.raises(FetchFailed) as caught:
        get(f"{server}/redirect-loop")
    assert caught.value.code == "fetch_failed"
    assert "more than 5" in caught.value.message


def test_a_404_fails_with_its_status(server):
    with pytest.raises(FetchFailed) as caught:
        get(f"{server}/missing")
    assert caught.value.code == "fetch_failed"
    assert "404" in caught.value.message


def test_a_slow_server_times_out(server):
    started = time.monotonic()
    with pytest.raises(FetchFailed) as caught:
        get(f"{server}/slow", timeout=0.3)
    assert caught.value.code == "fetch_timeout"
    assert time.monotonic() - started < 3


def test_the_timeout_bounds_the_whole_body(server):
    with pytest.raises(FetchFailed) as caught:
        get(f"{server}/dribble", timeout=0.5)
    assert caught.value.code == "fetch_timeout"


def test_a_closed_port_fails_to_fetch():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed) as caught:
        get(f"http://127.0.0.1:{port}/")
    assert caught.value.code == "fetch_failed"


def test_connects_to_the_checked_address_with_the_real_host_name(server, fake_dns):
    """DNS rebinding: a second look-up must not choose where the connection goes."""
    port = server.rsplit(":", 1)[1]
    answers = [["127.0.0.1"]]  # the first answer passes the check; later ones would not
    fake_dns["rebind.test"] = lambda: answers.pop(0) if answers else ["127.0.0.2"]
    fetched = get(f"http://rebind.test:{port}/host")
    assert fetched.data == f"rebind.test:{port}".encode()  # the Host header kept the name
    assert answers == []  # resolved once: the connection went to the checked address


def test_safe_filename():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\me\\photo.jpg") == "photo.jpg"
    assert safe_filename("bad\r\nname.txt") == "badname.txt"
    assert safe_filename("/") is None
    assert safe_filename("..") is None
    assert safe_filename(None) is None
    assert len(safe_filename("a" * 300 + ".txt")) == 255


# --- keep-alive pools (webhook deliveries) ----------------------------------------------


class Whoami(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; answers which server, which connection (the client's
    port) and which Host header it saw."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests += 1
        body = json.dumps(
            {
                "server": self.server.label,
                "connection": self.client_address[1],
                "host": self.headers["Host"],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def two_servers() -> Iterator[dict[str, ThreadingHTTPServer]]:
    """Servers on 127.0.0.1 and 127.0.0.2, on the same port (a name moving between them
    keeps its URL)."""
    servers: dict[str, ThreadingHTTPServer] = {}
    for label in ("127.0.0.1", "127.0.0.2"):
        port = servers["127.0.0.1"].server_address[1] if servers else 0
        httpd = ThreadingHTTPServer((label, port), Whoami)
        httpd.label, httpd.requests = label, 0
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers[label] = httpd
    yield servers
    for httpd in servers.values():
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def pool() -> Iterator[Pool]:
    pool = Pool(max_connections=4)
    yield pool
    pool.close()


def post(url: str, pool: Pool, allow: list[str]) -> dict:
    answer = request("POST", url, timeout=5, allow=allow, max_bytes=1000, content=b"{}", pool=pool)
    assert answer.status == 200
    return json.loads(answer.body)


def test_a_pool_keeps_its_connection_to_a_receiver(two_servers, pool):
    port = two_servers["127.0.0.1"].server_address[1]
    first = post(f"http://127.0.0.1:{port}/hook", pool, LOCAL)
    second = post(f"http://127.0.0.1:{port}/hook", pool, LOCAL)
    assert first["connection"] == second["connection"]


def test_a_pooled_connection_is_not_used_once_the_name_resolves_to_a_refused_address(
    two_servers, pool, fake_dns
):
    """DNS rebinding after the first delivery: the next one is checked again and refused
    before anything is sent, although a connection to the old address is open."""
    port = two_servers["127.0.0.1"].server_address[1]
    url = f"http://hooks.test:{port}/hook"
    fake_dns["hooks.test"] = ["127.0.0.1"]
    assert post(url, pool, LOCAL)["host"] == f"hooks.test:{port}"
    for answer in (["127.0.0.2"], ["10.0.0.5"], ["127.0.0.1", "169.254.169.254"]):
        fake_dns["hooks.test"] = answer
        with pytest.raises(UnsafeURL):
            post(url, pool, LOCAL)
    assert two_servers["127.0.0.1"].requests == 1
    assert two_servers["127.0.0.2"].requests == 0


def test_a_name_that_moves_to_another_allowed_address_is_sent_there(two_servers, pool, fake_dns):
    port = two_servers["127.0.0.1"].server_address[1]
    url = f"http://hooks.test:{port}/hook"
    allow = ["127.0.0.0/8"]
    fake_dns["hooks.test"] = ["127.0.0.1"]
    assert post(url, pool, allow)["server"] == "127.0.0.1"
    fake_dns["hooks.test"] = ["127.0.0.2"]
    assert post(url, pool, allow)["server"] == "127.0.0.2"


def test_two_names_on_one_address_do_not_share_a_connection(two_servers, pool, fake_dns):
    """A connection (for https: verified for one name) never carries another name."""
    port = two_servers["127.0.0.1"].server_address[1]
    fake_dns["a.test"] = fake_dns["b.test"] = ["127.0.0.1"]
    a = post(f"http://a.test:{port}/hook", pool, LOCAL)
    b = post(f"http://b.test:{port}/hook", pool, LOCAL)
    assert (a["host"], b["host"]) == (f"a.test:{port}", f"b.test:{port}")
    assert a["connection"] != b["connection"]
    assert post(f"http://a.test:{port}/hook", pool, LOCAL)["connection"] == a["connection"]

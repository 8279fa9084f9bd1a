"""Fetching URLs that users give us without letting them reach our own network (SSRF).

A media URL or a webhook URL is chosen by whoever calls the API, but fetched by the
server, from inside its network. Unguarded, ``http://169.254.169.254/`` would hand out
cloud credentials and ``http://127.0.0.1:5432/`` would probe the database. So:

- only ``http`` and ``https``;
- the host is resolved here, and the URL is refused if *any* address it resolves to is
  private, loopback, link-local, multicast, reserved, unspecified or carrier-grade NAT
  (IPv6 addresses that carry an IPv4 address, IPv4-mapped ``::ffff:a.b.c.d``, 6to4
  ``2002::/16``, NAT64 ``64:ff9b::/96`` and IPv4-compatible ``::a.b.c.d``, are judged by
  the IPv4 address inside, since a relay or translator delivers them there; local-use
  NAT64 ``64:ff9b:1::/48`` is always internal), unless the operator allowed that address
  or host name (``KABAR_FETCH_ALLOW``);
- the connection goes to an address that was checked, not to whatever a second DNS
  look-up answers (see ``_pinned``);
- redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop checked again;
- a keep-alive ``Pool`` (webhook receivers) reuses a connection only for a request that
  was itself checked and pinned to that connection's address, with the same host name;
- the body is streamed and cut off past ``max_bytes``, and the whole fetch has one
  deadline.

Proxies from the environment (``HTTP_PROXY``…) are ignored on purpose: through a proxy
the address actually reached is the proxy's business, and the checks above mean nothing.
"""

from __future__ import annotations

import email.message
import functools
import ipaddress
import socket
import ssl
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath

import httpx

from server.errors import KabarError

MAX_REDIRECTS = 5
USER_AGENT = "Kabar (self-hosted WhatsApp gateway)"
DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Shared address space for carrier-grade NAT (RFC 6598): ``ipaddress`` calls it neither
# private nor global, yet it is somebody's internal network.
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
# IPv6 prefixes whose addresses carry an IPv4 address that a relay or translator reaches
# (RFC 3056 6to4, RFC 6052 NAT64's well-known prefix); and local-use NAT64 (RFC 8215), a
# translator of the operator's own whose embedding depends on its prefix length.
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

# What makes an address off limits, most specific first so the message names the
# reason a person recognises (127.0.0.1 is "loopback", although it is "private" too).
_REFUSED_KINDS: tuple[tuple[str, str], ...] = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address (cloud metadata services live there)"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_site_local", "a site-local address"),  # IPv6 only; deprecated, still internal
    ("is_reserved", "a reserved address"),
)


class UnsafeURL(KabarError):
    status = 422
    code = "unsafe_url"
    message = "Kabar does not fetch this URL."


class FetchFailed(KabarError):
    status = 422
    code = "fetch_failed"
    message = "The URL could not be fetched."
    http_status: int | None = None
    """The HTTP status the URL answered with, when it answered."""


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None  # the media type only, lowercased, without parameters
    filename: str | None  # from Content-Disposition, else the last segment of the URL path
    final_url: str  # after redirects


@dataclass(frozen=True)
class _AllowList:
    networks: tuple[IPNetwork, ...]
    hosts: frozenset[str]

    @classmethod
    def parse(cls, entries: list[str]) -> _AllowList:
        """CIDR networks (a bare address is a /32 or /128) and exact host names."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(_normal_host(entry))
        return cls(tuple(networks), frozenset(hosts))

    def covers(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.networks if network.version == address.version
        )


def check_url(url: str, *, allow: list[str]) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is http(s) to addresses we may reach.

    A host that cannot be resolved raises ``FetchFailed`` (it is not unsafe, just absent).
    """
    _checked_addresses(_parse(url), _AllowList.parse(allow))


def check_url_offline(url: str, *, allow: list[str]) -> None:
    """``check_url`` without a DNS look-up: what can be refused at once, in a web request
    (not http(s), no host, an IP literal that is off limits). A host name is left to the
    fetch itself, which resolves and checks it again whatever this said."""
    parsed = _parse(url)
    if _is_ip(_normal_host(parsed.raw_host.decode("ascii"))):
        _checked_addresses(parsed, _AllowList.parse(allow))


def checked_url(url: str, *, allow: list[str]) -> tuple[httpx.URL, list[IPAddress]]:
    """``check_url`` that hands back its work: the parsed URL and the addresses found safe,
    for a caller that sends its own request (a webhook POST) and must connect to one of
    those addresses, not to a second look-up's answer (see ``pinned_request``)."""
    parsed = _parse(url)
    return parsed, _checked_addresses(parsed, _AllowList.parse(allow))


def pinned_request(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    address: IPAddress,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Request:
    """A ``method`` request to ``url`` that connects to the checked ``address`` (as
    ``_pinned`` does for fetches), with ``headers`` and ``content``."""
    request = _pinned(client, url, address, timeout)
    merged = httpx.Headers(request.headers)
    merged.update(headers or {})
    return client.build_request(
        method,
        request.url,
        timeout=timeout,
        content=content,
        headers=merged,
        extensions=request.extensions,
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context (the CA bundle, verification on) for every request: building it
    loads the CA certificates, which cost more CPU than a whole webhook delivery to a
    receiver on the same network. A context is safe to share between threads."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Answer:
    """What ``request`` got back: the status, headers and (capped) body."""

    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False


class Pool:
    """Keep-alive clients for requests that go to the same receivers again and again
    (webhook deliveries): a connection is opened once, not for every request.

    The guard stays as strong as with a client per request. Every request is still
    checked (resolved, every address judged) and pinned to a checked address. There is
    one client per origin as the URL names it (scheme, host name, port), so every
    request a client sends carries that one host name (Host header, TLS SNI and
    certificate check); within it, httpx pools connections by the address the request
    is pinned to. A pooled connection is therefore only reused for a request pinned to
    the same address, which this request's own check has just found safe: a host name
    that now resolves elsewhere gets a new connection to the new (checked) address, or
    is refused before anything is sent.

    ``max_connections``: per origin, the most requests at once (and idle connections
    kept). At most ``max_origins`` clients are kept; past that the least recently used
    is dropped (its connections close when the last request through it ends).
    """

    def __init__(self, *, max_connections: int, max_origins: int = 64, keepalive: float = 4.0):
        self.limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive,  # under the 5 s that many servers keep an idle one
        )
        self.max_origins = max_origins
        self._clients: OrderedDict[tuple[str, str, int], httpx.Client] = OrderedDict()
        self._lock = threading.Lock()

    def client(self, url: httpx.URL) -> httpx.Client:
        key = (url.scheme, _normal_host(url.raw_host.decode("ascii")), _port(url))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = _client(self.limits)
                while len(self._clients) > self.max_origins:
                    self._clients.popitem(last=False)
            self._clients.move_to_end(key)
            return client

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()


def _client(limits: httpx.Limits | None = None) -> httpx.Client:
    """A client for guarded requests: no proxies from the environment, no redirects."""
    return httpx.Client(
        trust_env=False,
        follow_redirects=False,
        verify=_tls(),
        headers={"User-Agent": USER_AGENT},
        limits=limits or httpx.Limits(),
    )


def _port(url: httpx.URL) -> int:
    return url.port or DEFAULT_PORTS[url.scheme]


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    allow: list[str],
    max_bytes: int,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    pool: Pool | None = None,
) -> Answer:
    """One ``method`` request under the guard, to a checked address; redirects are not
    followed (the answer is the 3xx). The body is read up to ``max_bytes``. With a
    ``pool``, its keep-alive client for the URL's origin sends it (see ``Pool``); else a
    client of its own.

    Raises ``UnsafeURL``, or ``FetchFailed`` (fetch_failed, fetch_timeout) when nothing
    answered; any HTTP status is an ``Answer``.
    """
    parsed, addresses = checked_url(url, allow=allow)
    if pool is not None:
        return _request(
            pool.client(parsed), method, parsed, addresses, timeout, max_bytes, headers, content
        )
    with _client() as client:
        return _request(client, method, parsed, addresses, timeout, max_bytes, headers, content)


def _request(
    client: httpx.Client,
    method: str,
    parsed: httpx.URL,
    addresses: list[IPAddress],
    timeout: float,
    max_bytes: int,
    headers: dict[str, str] | None,
    content: bytes | None,
) -> Answer:
    deadline = time.monotonic() + timeout
    for index, address in enumerate(addresses):
        built = pinned_request(
            client, method, parsed, address, timeout=timeout, headers=headers, content=content
        )
        try:
            response = client.send(built, stream=True)
        except httpx.ConnectError as exc:
            if index == len(addresses) - 1:
                raise FetchFailed(f"Could not connect to {parsed}: {exc}.") from exc
            continue
        except httpx.TimeoutException as exc:
            raise _timed_out(parsed) from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{method} {parsed} failed: {exc}.") from exc
        try:
            chunks, size, truncated = [], 0, False
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    truncated = True
                    break
                if time.monotonic() > deadline:
                    raise _timed_out(parsed)
        except httpx.TimeoutException as exc:
            raise _timed_out(parsed) from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{method} {parsed} failed while reading: {exc}.") from exc
        finally:
            response.close()
        return Answer(
            response.status_code,
            dict(response.headers),
            b"".join(chunks)[:max_bytes],
            truncated,
        )
    raise FetchFailed(f"{parsed} has no address to connect to.")


def fetch(url: str, *, max_bytes: int, timeout: float, allow: list[str]) -> Fetched:
    """GET ``url`` under the guard described in the module docstring.

    ``timeout`` bounds the whole fetch, redirects included, and every single wait in it.
    Raises ``UnsafeURL`` or ``FetchFailed`` (codes fetch_failed, fetch_too_large,
    fetch_timeout); never an httpx exception.
    """
    allowed = _AllowList.parse(allow)
    deadline = time.monotonic() + timeout
    current = _parse(url)
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = _checked_addresses(current, allowed)
        with _send(current, addresses, deadline) as response:
            if response.is_redirect:
                current = _redirect_target(current, response)
                continue
            _raise_for_status(current, response)
            data = _read_capped(current, response, max_bytes, deadline)
            return Fetched(
                data=data,
                content_type=_media_type(response.headers.get("content-type")),
                filename=_filename(current, response),
                final_url=str(current),
            )
    raise FetchFailed(
        f"{url} redirected more than {MAX_REDIRECTS} times; Kabar stopped "
        "following it. Give the final URL instead."
    )


def safe_filename(name: str | None) -> str | None:
    """The last path segment of an untrusted name, without control characters.

    Names come from other people's servers and uploads; whatever they say, the result
    can never climb out of a folder or break a header. None when nothing usable is left.
    """
    if not name:
        return None
    name = PurePosixPath(name.replace("\\", "/")).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in {"", ".", ".."}:
        return None
    return name[:255]


# --- checking -------------------------------------------------------------------------


def _parse(url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeURL(f"{url!r} is not a valid URL: {exc}.") from exc
    if parsed.scheme not in DEFAULT_PORTS:
        raise UnsafeURL(f"Kabar only fetches http:// and https:// URLs, not {url!r}.")
    if not parsed.host:
        raise UnsafeURL(f"{url!r} has no host name.")
    return parsed


def _checked_addresses(url: httpx.URL, allowed: _AllowList) -> list[IPAddress]:
    """The addresses ``url``'s host resolves to, all of them safe (or allowed)."""
    host = _normal_host(url.raw_host.decode("ascii"))
    addresses = _resolve(host, url.port or DEFAULT_PORTS[url.scheme])
    if host in allowed.hosts:
        return addresses
    literal = _is_ip(host)
    for address in addresses:
        reason = _refusal(address)
        if reason and not allowed.covers(address) and not _mapped_allowed(address, allowed):
            shown = host if literal else f"the host {host} resolves to {address}"
            to_allow = (_embedded_ipv4(address) or (address,))[0]
            names = f"{to_allow} (or a CIDR network that holds it)"
            if not literal:
                names += f" or the host name {host}"
            raise UnsafeURL(
                f"Kabar refused to fetch {url}: {shown}, which is {reason}. If this server "
                f"is meant to reach it, add {names} to KABAR_FETCH_ALLOW."
            )
    return addresses


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host`` in the resolver's order; an IP literal is itself."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"The host {host} could not be resolved ({exc}).") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # An IPv6 link-local answer may carry a zone ("fe80::1%eth0"); the zone does not
        # change what kind of address it is.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchFailed(f"The host {host} has no addresses.")
    return addresses


def _embedded_ipv4(address: IPAddress) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and how it is written; None if none."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped IPv6"
    if address.sixtofour is not None:
        return address.sixtofour, "a 6to4 address (2002::/16)"
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "a NAT64 address (64:ff9b::/96)"
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1
        return ipaddress.IPv4Address(int(address)), "an IPv4-compatible IPv6 address"
    return None


def _refusal(address: IPAddress) -> str | None:
    """Why ``address`` is off limits, as a phrase; None if it is a public address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = _refusal(embedded[0])
        return f"{inner}, written as {embedded[1]}" if inner else None
    if address in LOCAL_NAT64:
        return "a local-use NAT64 address (64:ff9b:1::/48, the operator's own translator)"
    for attribute, phrase in _REFUSED_KINDS:
        if getattr(address, attribute, False):
            return phrase
    if address in CARRIER_GRADE_NAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    return None


def _mapped_allowed(address: IPAddress, allowed: _AllowList) -> bool:
    """``::ffff:10.1.2.3`` (or 6to4, NAT64) is allowed when 10.1.2.3 is: the same host."""
    embedded = _embedded_ipv4(address)
    return embedded is not None and allowed.covers(embedded[0])


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


# --- fetching -------------------------------------------------------------------------


@contextmanager
def _send(url: httpx.URL, addresses: list[IPAddress], deadline: float) -> Iterator[httpx.Response]:
    """Send a GET for ``url`` to the first checked address that accepts a connection.

    Every hop gets a client of its own: pinned requests share a pool key (the address),
    and a pooled TLS connection verified for one host name must not carry a request for
    another.
    """
    with _client() as client:
        response = None
        for index, address in enumerate(addresses):
            request = _pinned(client, url, address, _remaining(url, deadline))
            try:
                response = client.send(request, stream=True)
                break
            except httpx.ConnectError as exc:
                if index == len(addresses) - 1:
                    raise FetchFailed(f"Could not connect to {url}: {exc}.") from exc
            except httpx.TimeoutException as exc:
                raise _timed_out(url) from exc
            except httpx.HTTPError as exc:
                raise FetchFailed(f"Fetching {url} failed: {exc}.") from exc
        assert response is not None
        try:
            yield response
        finally:
            response.close()


def _pinned(
    client: httpx.Client, url: httpx.URL, address: IPAddress, timeout: float
) -> httpx.Request:
    """A request that connects to ``address`` while still speaking to ``url``'s host.

    Resolving once to check and letting httpx resolve again to connect would leave a
    window for DNS rebinding (a name that answers a public address to the check and
    127.0.0.1 to the connection). So the request goes to the checked address itself,
    with the real name in the Host header and, for https, in SNI and certificate
    verification (httpcore's ``sni_hostname`` extension).
    """
    host = url.raw_host.decode("ascii")
    if _normal_host(host) == str(address):
        return client.build_request("GET", url, timeout=timeout)
    headers = {"Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    return client.build_request(
        "GET",
        url.copy_with(host=str(address)),
        headers=headers,
        timeout=timeout,
        extensions=extensions,
    )


def _redirect_target(current: httpx.URL, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location", "")
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchFailed(f"{current} redirected to an invalid URL {location!r}.") from exc
    return _parse(target)


def _raise_for_status(url: httpx.URL, response: httpx.Response) -> None:
    if not response.is_success:
        error = FetchFailed(
            f"{url} answered HTTP {response.status_code} "
            f"{response.reason_phrase}; expected a 2xx response."
        )
        error.http_status = response.status_code  # a 4xx will not mend by trying again
        raise error


def _read_capped(
    url: httpx.URL, response: httpx.Response, max_bytes: int, deadline: float
) -> bytes:
    """The body, refused as soon as it is known to be over ``max_bytes``.

    Content-Length is checked first so an honest server is refused before it sends
    anything; the running count catches servers that lie or do not say (and bodies
    that grow when decompressed).
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(url, max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(url, max_bytes)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _timed_out(url)
    except httpx.TimeoutException as exc:
        raise _timed_out(url) from exc
    except httpx.HTTPError as exc:
        raise FetchFailed(f"Reading the body of {url} failed: {exc}.") from exc
    return b"".join(chunks)


def _remaining(url: httpx.URL, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(url)
    return left


def _timed_out(url: httpx.URL) -> FetchFailed:
    return FetchFailed(
        f"Fetching {url} took too long; Kabar gave up (KABAR_FETCH_TIMEOUT).", code="fetch_timeout"
    )


def _too_large(url: httpx.URL, max_bytes: int) -> FetchFailed:
    return FetchFailed(
        f"{url} is larger than {max_bytes} bytes, the most Kabar fetches (KABAR_FETCH_MAX_BYTES).",
        code="fetch_too_large",
    )


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    media_type = header.split(";", 1)[0].strip().lower()
    return media_type or None


def _filename(url: httpx.URL, response: httpx.Response) -> str | None:
    """Content-Disposition's name (RFC 6266, filename* included), else the URL's."""
    disposition = response.headers.get("content-disposition")
    if disposition:
        message = email.message.Message()
        message["content-disposition"] = disposition
        name = safe_filename(message.get_filename())
        if name:
            return name
    return safe_filename(url.path)

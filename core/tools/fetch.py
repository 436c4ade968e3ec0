"""`fetch_url`: read a web page, PDF or image for the model, without letting it reach inside the network.

The SSRF guard lives in the connection itself: `GuardedBackend` is the httpcore network backend of the
client, so every TCP connection (the first request and every redirect hop) resolves the host once,
checks every address it resolved to, and connects to a checked address. Nothing resolves the name a
second time, so a DNS answer that changes between check and connect (DNS rebinding) cannot slip
through, while TLS still verifies and sends SNI for the hostname (httpcore passes the URL's host as
`server_hostname`) and the Host header stays the URL's.

Refused: loopback, private, link-local, shared/CGNAT (100.64/10), unique-local (fc00::/7), multicast,
unspecified, reserved and other non-global addresses, IPv4 addresses embedded in IPv6 (mapped, 6to4,
NAT64) judged as the IPv4 address, and cloud metadata endpoints, which `SEEDBOT_FETCH_ALLOW_HOSTS`
cannot permit. Proxies from the environment are ignored (a proxy would make the guard check the proxy),
no cookies are kept or sent, and no header but the User-Agent, Accept and Accept-Encoding is sent.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import trafilatura

from core.config import Settings
from core.media.pipeline import MediaPipeline
from core.media.sniff import looks_like_html, magic_type
from core.media.units import MB, size_text
from core.tools.base import Tool, ToolContext, ToolResult

log = logging.getLogger("seedbot.tools.fetch")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

USER_AGENT = "seedbot/0.1 (chat bot fetch_url tool; reads one page a user asked about)"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_BYTES = 5 * MB
DEFAULT_MAX_REDIRECTS = 5
_CHUNK = 64 * 1024

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/ld+json", "application/rss+xml")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


class AddressRefused(Exception):
    """A connection the guard would not open; `str()` is the reason, fit for the model."""


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4 or NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why the fetcher must not connect to `address` (e.g. "a loopback address"), or None if it may."""
    if (inner := embedded_ipv4(address)) is not None:
        return address_refusal(inner)
    checks = (
        (address in METADATA_ADDRESSES, "a cloud metadata address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "a shared (CGNAT) address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for refused, reason in checks if refused), None)


def _host_key(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which hosts and addresses fetch_url may connect to."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, entries: Iterable[str]) -> AddressPolicy:
        """From `SEEDBOT_FETCH_ALLOW_HOSTS` entries: hostnames, IP addresses or CIDRs."""
        hosts, networks = set(), []
        for entry in entries:
            key = _host_key(entry)
            if not key:
                continue
            try:
                networks.append(ipaddress.ip_network(key, strict=False))
            except ValueError:
                hosts.add(key)
        return cls(frozenset(hosts), tuple(networks))

    def host_refusal(self, host: str) -> str | None:
        """Refusals decided by the name alone (metadata endpoints)."""
        if _host_key(host) in METADATA_HOSTS:
            return f"{host} is a cloud metadata endpoint"
        return None

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why `host` must not be reached at `address`, or None."""
        plain = embedded_ipv4(address) or address
        if plain in METADATA_ADDRESSES:
            return f"{host} resolves to {address}, a cloud metadata address"
        if _host_key(host) in self.allowed_hosts:
            return None
        if any(plain.version == net.version and plain in net for net in self.allowed_networks):
            return None
        reason = address_refusal(address)
        if reason is None:
            return None
        if _host_key(host) == str(address):
            return f"{address} is {reason}"
        return f"{host} resolves to {address}, {reason}"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once, refuses it unless every address passes the policy, connects to those."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        if reason := self._policy.host_refusal(host):
            raise AddressRefused(reason)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(_host_key(host), port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise httpcore.ConnectError(f"{host} could not be resolved") from error
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
        for address in addresses:
            if reason := self._policy.refusal(host, address):
                raise AddressRefused(reason)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        raise last_error or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("Unix sockets are not reachable")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection goes through `GuardedBackend`."""

    def __init__(self, policy: AddressPolicy, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=10,
            max_keepalive_connections=0,
            network_backend=GuardedBackend(policy),
        )


def _no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that accepts no cookie, so none set by one hop is sent to the next."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def url_refusal(url: str) -> str | None:
    """Why `url` is not something fetch_url reads (wrong scheme, no host, credentials), or None."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"only http and https URLs can be fetched, not {parts.scheme or 'a URL without a scheme'}"
    if not parts.hostname:
        return f"{url!r} has no host"
    if parts.username is not None or parts.password is not None:
        return "URLs with a user name or password are not fetched"
    return None


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str
    status: int
    content_type: str
    body: bytes
    cut: bool
    charset: str | None = None

    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")


class FetchError(Exception):
    """A fetch that produced nothing to read; `str()` is the reason for the model."""


def _display_host(url: str) -> str:
    return urlsplit(url).hostname or url


def _file_name(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1] or _display_host(url)


def extract_html(body: bytes, url: str) -> tuple[str | None, str]:
    """Blocking: the page's title and main text (navigation, ads and footers removed)."""
    document = trafilatura.bare_extraction(
        body, url=url, with_metadata=True, include_tables=True, include_comments=False, favor_recall=True
    )
    if document is None or not (document.text or "").strip():
        return None, ""
    return document.title, document.text.strip()


class FetchUrl(Tool):
    name = "fetch_url"
    description = (
        "Fetch a public web page, PDF or image by its http(s) URL and return its readable text (or the "
        "image itself). Use it when the user shares a link or asks about a specific page."
    )
    parameters = {  # noqa: RUF012
        "type": "object",
        "properties": {"url": {"type": "string", "description": "The full http:// or https:// URL."}},
        "required": ["url"],
    }

    def __init__(
        self,
        media: MediaPipeline,
        *,
        allow_hosts: Iterable[str] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._media = media
        self._ssl_context = ssl_context  # None: the system's CA bundle via httpx (certifi)
        self.policy = AddressPolicy.allowing(allow_hosts)
        self.fetch_timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects

    @classmethod
    def from_settings(cls, settings: Settings, media: MediaPipeline) -> FetchUrl:
        return cls(media, allow_hosts=settings.fetch_allow_hosts)

    def status_text(self, args: dict[str, Any]) -> str:
        url = args.get("url")
        return f"🔧 Fetching {_display_host(url)}…" if isinstance(url, str) and url else "🔧 Fetching a page…"

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        url = args.get("url")
        if not isinstance(url, str) or not url.strip():
            return ToolResult.error("Give the URL to fetch as the url argument.")
        url = url.strip()
        try:
            async with asyncio.timeout(self.fetch_timeout_s):
                fetched = await self.fetch(url)
        except TimeoutError:
            return ToolResult.error(
                f"{_display_host(url)} did not send the page within {self.fetch_timeout_s:g} seconds.",
                summary=f"{_display_host(url)} timed out",
            )
        except (AddressRefused, FetchError) as refusal:
            return ToolResult.error(f"Not fetched: {refusal}.", summary=f"Refused {_display_host(url)}")
        except httpx.HTTPError as error:
            return ToolResult.error(
                f"Could not fetch {url}: {type(error).__name__}.",
                summary=f"Could not reach {_display_host(url)}",
            )
        return await self._result(fetched)

    async def fetch(self, url: str) -> Fetched:
        """GET `url`, following at most `max_redirects` redirects, each checked again; body capped."""
        async with httpx.AsyncClient(
            transport=GuardedTransport(self.policy, self._ssl_context),
            trust_env=False,
            follow_redirects=False,
            cookies=_no_cookies(),
            headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(self.fetch_timeout_s),
        ) as client:
            for hop in range(self.max_redirects + 1):
                if reason := url_refusal(url):
                    raise FetchError(reason)
                async with client.stream("GET", url) as response:
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        if hop == self.max_redirects:
                            raise FetchError(f"{url} redirected more than {self.max_redirects} times")
                        url = str(response.url.join(location))
                        continue
                    body, cut = await self._read(response)
                    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    return Fetched(
                        str(response.url),
                        response.status_code,
                        content_type,
                        body,
                        cut,
                        response.charset_encoding,
                    )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        """The body up to `max_bytes`; stops reading (and drops the connection) past it."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False

    async def _result(self, fetched: Fetched) -> ToolResult:
        host = _display_host(fetched.url)
        size = len(fetched.body)
        summary = f"Fetched {host} ({f'{size} B' if size < 1000 else size_text(size)})"
        if fetched.status >= 400:
            return ToolResult.error(
                f"{fetched.url} answered HTTP {fetched.status}.", summary=f"{host} answered {fetched.status}"
            )
        header = [f"URL: {fetched.url}"]
        cut_note = f"[the page is larger than {size_text(self.max_bytes)}; only the start was read]"
        sniffed = magic_type(fetched.body)
        if sniffed is not None and sniffed.kind in ("image", "pdf", "video"):
            if fetched.cut:
                return ToolResult.error(
                    f"{fetched.url} is {sniffed.label} larger than {size_text(self.max_bytes)}; not read.",
                    summary=f"{host}: too large",
                )
            prepared = await self._media.prepare_bytes(_file_name(fetched.url), fetched.body, fetched.url)
            if not prepared.parts:
                reason = " ".join(prepared.notes) or "could not be read"
                return ToolResult.error(f"{fetched.url}: {reason}", summary=f"{host}: unreadable")
            header.extend(prepared.notes)
            return ToolResult(
                text="\n".join(header), parts=prepared.parts, sources=[fetched.url], summary=summary
            )
        is_html = fetched.content_type in _HTML_TYPES or (
            not fetched.content_type.startswith(_TEXT_TYPES) and looks_like_html(fetched.body)
        )
        if is_html:
            title, text = await asyncio.to_thread(extract_html, fetched.body, fetched.url)
            if not text:
                return ToolResult.error(f"{fetched.url} has no readable text.", summary=f"{host}: no text")
            if title:
                header.append(f"Title: {title}")
        elif fetched.content_type.startswith(_TEXT_TYPES) or (not fetched.content_type and sniffed is None):
            text = fetched.text()
        else:
            return ToolResult.error(
                f"{fetched.url} is of type {fetched.content_type or 'unknown'}, which cannot be read.",
                summary=f"{host}: unreadable type",
            )
        if fetched.cut:
            header.append(cut_note)
        return ToolResult(text="\n".join(header) + "\n\n" + text, sources=[fetched.url], summary=summary)

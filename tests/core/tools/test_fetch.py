"""fetch_url against real servers on loopback: the SSRF guard, redirects, caps, and what the model sees."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import trustme
from aiohttp import web

from core.config import Settings
from core.media.pipeline import MediaPipeline
from core.tools.base import ToolContext, media_message
from core.tools.fetch import AddressPolicy, FetchUrl, address_refusal
from tests.core.media.samples import encode, pdf_with_text, photo
from tests.fakes.loopback import serve_on_loopback

CTX = ToolContext(platform="test")
ARTICLE = """<!doctype html><html><head><title>Deploying seedbot – Example Blog</title></head><body>
<div id="cookie-banner">We use cookies. <button>Accept all</button></div>
<nav><a href="/">Home</a> | <a href="/blog">Blog</a> | <a href="/about">About</a></nav>
<main><article><h1>Deploying seedbot</h1>
<p>Running a chat bot in production takes more than a container image. This guide walks through the
deployment manifest, the secrets it needs and how to roll out a new version without dropping answers.</p>
<h2>Rolling updates</h2>
<p>Set a termination grace period longer than SEEDBOT_SHUTDOWN_GRACE_S so in-flight answers finish; the
readiness probe should hit /readyz before traffic is sent to a new pod.</p>
<table><tr><th>Setting</th><th>Value</th></tr><tr><td>replicas</td><td>2</td></tr></table>
</article></main>
<footer>© 2026 Example Inc. All rights reserved. <a href="/privacy">Privacy</a></footer>
<script>var tracking = "do-not-show";</script></body></html>"""


@dataclass
class Site:
    base: str
    port: int
    hits: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    big_sent: int = 0
    big_done: asyncio.Event = field(default_factory=asyncio.Event)


def site_app(site: Site) -> web.Application:
    async def record(request: web.Request) -> None:
        site.hits.append(request.path)
        site.headers = dict(request.headers)

    async def page(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text=ARTICLE, content_type="text/html")

    async def plain(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="just text, déjà vu", content_type="text/plain", charset="utf-8")

    async def image(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=encode(photo(320, 200), "PNG"), content_type="image/png")

    async def pdf(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(
            body=pdf_with_text(["Quarterly report", "Revenue grew"]), content_type="application/pdf"
        )

    async def hop(request: web.Request) -> web.Response:
        await record(request)
        left = int(request.match_info["left"])
        target = "/plain" if left == 0 else f"/hop/{left - 1}"
        response = web.HTTPFound(target)
        response.set_cookie("session", "from-the-redirect")
        raise response

    async def to(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound(request.query["url"])

    async def headers(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"cookie": request.headers.get("Cookie"), "headers": dict(request.headers)})

    async def big(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = 50 * 1024 * 1024
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while site.big_sent < 50 * 1024 * 1024:
                await response.write(chunk)
                site.big_sent += len(chunk)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            site.big_done.set()
        return response

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(30)
        return web.Response(text="too late")

    async def missing(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=404, text="no such page")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/plain", plain)
    app.router.add_get("/image.png", image)
    app.router.add_get("/report.pdf", pdf)
    app.router.add_get("/hop/{left}", hop)
    app.router.add_get("/to", to)
    app.router.add_get("/headers", headers)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/missing", missing)
    return app


async def serve(host: str, tls: ssl.SSLContext | None = None) -> AsyncIterator[Site]:
    site = Site(base="", port=0)
    runner, port = await serve_on_loopback(site_app(site), host, ssl_context=tls)
    site.base, site.port = f"{'https' if tls else 'http'}://{host}:{port}", port
    try:
        yield site
    finally:
        await runner.cleanup()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async for served in serve("127.0.0.1"):
        yield served


@pytest.fixture
async def other_site() -> AsyncIterator[Site]:
    """A second server on another loopback address, which only the default policy knows nothing about."""
    async for served in serve("127.0.0.2"):
        yield served


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_site(ca: trustme.CA) -> AsyncIterator[Site]:
    """An HTTPS server on 127.0.0.1 whose certificate names only `localhost`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    async for served in serve("127.0.0.1", context):
        yield served


@pytest.fixture
def media() -> MediaPipeline:
    return MediaPipeline(Settings(_env_file=None))


def fetcher(media: MediaPipeline, *allow: str, **options: float) -> FetchUrl:
    return FetchUrl(media, allow_hosts=allow, **options)  # type: ignore[arg-type]


async def test_loopback_is_refused_by_default_without_connecting(site: Site, media: MediaPipeline):
    result = await fetcher(media).run({"url": f"{site.base}/page"}, CTX)
    assert not result.ok
    assert result.text == "Not fetched: 127.0.0.1 is a loopback address."
    assert site.hits == []


async def test_a_hostname_resolving_to_loopback_is_refused(site: Site, media: MediaPipeline):
    result = await fetcher(media).run({"url": f"http://localhost:{site.port}/page"}, CTX)
    assert not result.ok and "localhost resolves to" in result.text and "loopback" in result.text
    assert site.hits == []


async def test_allow_hosts_permits_a_named_internal_host(site: Site, media: MediaPipeline):
    result = await fetcher(media, "127.0.0.1").run({"url": f"{site.base}/plain"}, CTX)
    assert result.ok, result.text
    assert result.text == f"URL: {site.base}/plain\n\njust text, déjà vu"
    assert result.sources == [f"{site.base}/plain"]
    assert result.summary == f"Fetched 127.0.0.1 ({len('just text, déjà vu'.encode())} B)"


async def test_an_allowed_hostname_keeps_its_host_header_and_sends_no_secrets(
    site: Site, media: MediaPipeline
):
    result = await fetcher(media, "localhost").run({"url": f"http://localhost:{site.port}/headers"}, CTX)
    assert result.ok, result.text
    sent = json.loads(result.text.split("\n\n", 1)[1])["headers"]
    assert sent["Host"] == f"localhost:{site.port}"
    assert sent["User-Agent"].startswith("seedbot/")
    assert set(sent) <= {"Host", "User-Agent", "Accept", "Accept-Encoding", "Connection"}


async def test_https_checks_the_certificate_against_the_hostname_not_the_pinned_address(
    tls_site: Site, ca: trustme.CA, media: MediaPipeline
):
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    tool = FetchUrl(media, allow_hosts=["localhost", "127.0.0.1"], ssl_context=client_context)
    # Connected to 127.0.0.1 yet verified (and SNI sent) as localhost, which the certificate names.
    result = await tool.run({"url": f"https://localhost:{tls_site.port}/plain"}, CTX)
    assert result.ok, result.text
    assert result.text.endswith("just text, déjà vu")
    # The same server by its address: the certificate does not name 127.0.0.1, so nothing is read.
    result = await tool.run({"url": f"https://127.0.0.1:{tls_site.port}/plain"}, CTX)
    assert not result.ok and "Could not fetch" in result.text
    assert tls_site.hits == ["/plain"]
    # And without trusting the test CA, the default context refuses the certificate.
    result = await FetchUrl(media, allow_hosts=["localhost"]).run(
        {"url": f"https://localhost:{tls_site.port}/plain"}, CTX
    )
    assert not result.ok and tls_site.hits == ["/plain"]


async def test_a_cidr_in_allow_hosts_permits_its_addresses(site: Site, media: MediaPipeline):
    assert (await fetcher(media, "127.0.0.0/30").run({"url": f"{site.base}/plain"}, CTX)).ok


async def test_a_redirect_to_another_internal_address_is_refused(
    site: Site, other_site: Site, media: MediaPipeline
):
    url = f"{site.base}/to?url={other_site.base}/plain"
    result = await fetcher(media, "127.0.0.1").run({"url": url}, CTX)
    assert not result.ok and result.text == "Not fetched: 127.0.0.2 is a loopback address."
    assert site.hits == ["/to"] and other_site.hits == []
    # Allowed, the same redirect is followed (so the refusal above was the guard, not the network).
    result = await fetcher(media, "127.0.0.1", "127.0.0.2").run({"url": url}, CTX)
    assert result.ok and other_site.hits == ["/plain"]


async def test_a_redirect_to_a_non_http_scheme_is_refused(site: Site, media: MediaPipeline):
    result = await fetcher(media, "127.0.0.1").run({"url": f"{site.base}/to?url=file:///etc/passwd"}, CTX)
    assert not result.ok and "only http and https" in result.text


async def test_five_redirects_are_followed_and_cookies_are_never_sent_back(site: Site, media: MediaPipeline):
    result = await fetcher(media, "127.0.0.1").run({"url": f"{site.base}/hop/4"}, CTX)
    assert result.ok and result.sources == [f"{site.base}/plain"]
    assert site.hits == ["/hop/4", "/hop/3", "/hop/2", "/hop/1", "/hop/0", "/plain"]
    assert "Cookie" not in site.headers


async def test_more_than_five_redirects_are_refused(site: Site, media: MediaPipeline):
    result = await fetcher(media, "127.0.0.1").run({"url": f"{site.base}/hop/5"}, CTX)
    assert not result.ok and "redirected more than 5 times" in result.text
    assert len(site.hits) == 6 and "/plain" not in site.hits


async def test_a_50_mb_body_is_cut_at_5_mb_and_the_rest_is_never_read(site: Site, media: MediaPipeline):
    result = await fetcher(media, "127.0.0.1").run({"url": f"{site.base}/big"}, CTX)
    assert result.ok
    header, body = result.text.split("\n\n", 1)
    assert "only the start was read" in header
    assert len(body) == 5_000_000
    await asyncio.wait_for(site.big_done.wait(), 5)
    # Whatever the kernel buffered on top, the server could not send anywhere near the 50 MB.
    assert 5_000_000 <= site.big_sent < 20_000_000


async def test_a_slow_server_times_out(site: Site, media: MediaPipeline):
    started = asyncio.get_running_loop().time()
    result = await fetcher(media, "127.0.0.1", timeout_s=0.5).run({"url": f"{site.base}/slow"}, CTX)
    assert asyncio.get_running_loop().time() - started < 3
    assert not result.ok and "within 0.5 seconds" in result.text


async def test_html_becomes_readable_text_without_the_page_furniture(site: Site, media: MediaPipeline):
    result = await fetcher(media, "127.0.0.1").run({"url": f"{site.base}/page"}, CTX)
    assert result.ok
    assert "\nTitle: Deploying seedbot\n" in result.text
    assert "SEEDBOT_SHUTDOWN_GRACE_S so in-flight answers finish" in result.text
    assert "replicas" in result.text  # tables are kept
    for furniture in ("Accept all", "All rights reserved", "do-not-show", "<p>"):
        assert furniture not in result.text


async def test_an_image_reaches_the_model_as_an_image_part(site: Site, media: MediaPipeline):
    result = await fetcher(media, "127.0.0.1").run({"url": f"{site.base}/image.png"}, CTX)
    assert result.ok and result.parts
    [part] = result.media
    assert part.type == "image_url" and part.image_url.url.startswith("data:image/")  # type: ignore[union-attr]
    message = media_message([result])
    assert message is not None and part in message.content


async def test_a_pdf_goes_through_the_media_pipeline(site: Site, media: MediaPipeline):
    result = await fetcher(media, "127.0.0.1").run({"url": f"{site.base}/report.pdf"}, CTX)
    assert result.ok and "Revenue grew" in result.model_text()


async def test_http_errors_and_bad_urls_are_explained(site: Site, media: MediaPipeline):
    tool = fetcher(media, "127.0.0.1")
    assert (await tool.run({"url": f"{site.base}/missing"}, CTX)).text == (
        f"{site.base}/missing answered HTTP 404."
    )
    assert "only http and https" in (await tool.run({"url": "ftp://example.com/x"}, CTX)).text
    assert "user name or password" in (await tool.run({"url": "http://u:p@127.0.0.1/"}, CTX)).text
    assert not (await tool.run({}, CTX)).ok


async def test_metadata_hosts_are_refused_even_when_allowed(media: MediaPipeline):
    tool = fetcher(media, "metadata.google.internal", "169.254.0.0/16")
    result = await tool.run({"url": "http://metadata.google.internal/computeMetadata/v1/"}, CTX)
    assert result.text == "Not fetched: metadata.google.internal is a cloud metadata endpoint."
    assert (
        AddressPolicy.allowing(["169.254.0.0/16"]).refusal("x", ipaddress.ip_address("169.254.169.254"))
        == "x resolves to 169.254.169.254, a cloud metadata address"
    )


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.254", "a shared (CGNAT) address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("240.0.0.1", "a reserved address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("2002:a00:1::", "a private address"),  # 6to4 of 10.0.0.1
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
        ("192.0.2.1", "a private address"),  # documentation range
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("100.128.0.1", None),
    ],
)
def test_address_classification(address: str, reason: str | None):
    assert address_refusal(ipaddress.ip_address(address)) == reason


def test_an_allowed_ipv4_address_is_allowed_in_its_ipv4_mapped_form_too():
    policy = AddressPolicy.allowing(["127.0.0.1", "intranet.example"])
    assert policy.refusal("h", ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert policy.refusal("h", ipaddress.ip_address("::ffff:127.0.0.2")) is not None
    assert policy.refusal("Intranet.Example.", ipaddress.ip_address("10.0.0.5")) is None


def test_status_line_names_the_host(media: MediaPipeline):
    assert fetcher(media).status_text({"url": "https://example.com/a/b"}) == "🔧 Fetching example.com…"


async def test_allow_hosts_come_from_the_settings(site: Site, media: MediaPipeline):
    settings = Settings(_env_file=None, fetch_allow_hosts=" intranet.example , 127.0.0.1/32 ")
    assert settings.fetch_allow_hosts == ("intranet.example", "127.0.0.1/32")
    tool = FetchUrl.from_settings(settings, media)
    assert (await tool.run({"url": f"{site.base}/plain"}, CTX)).ok
    assert not (await FetchUrl.from_settings(Settings(_env_file=None), media).run({"url": site.base}, CTX)).ok

"""The admin console in a real browser (Debian's Chromium driven by Playwright): no JavaScript of ours,
just forms, links, cookies and the server-rendered chart, as an admin would use them."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from bots.http import HttpServer, readiness_from_probes
from bots.web.app import mount_console
from bots.web.live import ServiceAnswers
from core.config import Settings
from core.models import ConversationKey, Turn
from core.money import format_usd
from core.reply.surface import PlatformLimits
from core.service import ChatService
from core.store.base import Reservation, UsageFilter, utc_now
from tests.core.store.entries import entry
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import API_KEY, FakeModelServer, Script
from tests.web.conftest import TOKEN

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is needed for these tests: apt-get install chromium (.ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable)
        yield launched
        await launched.close()


@asynccontextmanager
async def console(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[ChatService, str]]:
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{tmp_path / 'seedbot.db'}", admin_token=TOKEN, **overrides
    )
    service = await ChatService.open(settings)
    server = HttpServer(service.metrics, readiness_from_probes({}), host="127.0.0.1")
    mount_console(server, service, settings, live=ServiceAnswers(service))
    try:
        async with server:
            yield service, f"http://127.0.0.1:{server.port}/admin"
    finally:
        await service.close()


async def log_in(page: Page, base: str, token: str = TOKEN) -> None:
    await page.goto(base)  # a stranger is sent to the login form
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_label("Your name, for the audit log").fill("ann")
    await page.get_by_role("button", name="Log in").click()


async def test_a_wrong_token_is_refused(browser: Browser, tmp_path: Path) -> None:
    async with console(tmp_path) as (_, base):
        page = await browser.new_page()
        await log_in(page, base, token="not-the-token-but-long-enough")
        assert page.url == f"{base}/login"
        assert await page.get_by_role("alert").inner_text() == "That is not the admin token."
        assert not [c for c in await page.context.cookies() if c["name"] == "seedbot_admin"]
        await page.context.close()


async def test_the_overview_chart_shows_the_stores_totals(browser: Browser, tmp_path: Path) -> None:
    async with console(tmp_path) as (service, base):
        now = utc_now()
        await service.store.record_usage(
            *(
                entry(
                    platform="slack" if n % 3 else "discord",
                    usd=Decimal(n) / 997,
                    at=now - timedelta(days=n % 29, minutes=1),
                )
                for n in range(1, 90)
            ),
            entry(usd=Decimal(50), at=now - timedelta(days=45)),  # outside the chart
        )
        since = now.date() - timedelta(days=29)
        expected = sum(
            [(await service.store.usage_totals(UsageFilter(p), since)).usd for p in ("slack", "discord")],
            Decimal(0),
        )
        page = await browser.new_page()
        await log_in(page, base)

        assert page.url == base
        chart = page.get_by_role("img", name="Spend per day for the last 30 days, stacked by platform")
        bars = await chart.locator("rect.bar").evaluate_all("bars => bars.map(bar => bar.dataset.usd)")
        assert sum((Decimal(usd) for usd in bars), Decimal(0)) == expected
        assert {await bar.get_attribute("data-series") for bar in await chart.locator("rect.bar").all()} == {
            "slack",
            "discord",
        }
        assert await page.locator("#total-30d .amount").inner_text() == format_usd(expected)
        assert await page.locator(".chart-total").inner_text() == format_usd(expected)
        await page.get_by_role("link", name="C1").first.click()  # the busiest channel's own page
        platform, workspace, channel = page.url.removeprefix(f"{base}/channel/").split("/")
        mine = await service.store.usage_totals(UsageFilter(platform, workspace, channel=channel), since)
        assert (platform, workspace, channel) == ("slack", "T1", "C1")
        assert await page.locator("#total-30d .amount").inner_text() == format_usd(mine.usd)
        await page.context.close()


async def test_a_budget_set_in_the_form_refuses_the_next_answer(browser: Browser, tmp_path: Path) -> None:
    async with console(tmp_path) as (service, base):
        await service.store.record_usage(entry(usd=Decimal("0.002")))
        key = ConversationKey("slack", "T1", "C1")
        assert isinstance(await service.budgets.reserve(key, "U1", Decimal("0.01")), Reservation)
        page = await browser.new_page()
        await log_in(page, base)
        await page.get_by_role("link", name="Budgets").click()

        row = page.locator("#ws-slack-T1 tr.budget[data-kind=user_daily]")
        await row.get_by_role("textbox").fill("0.005")
        await row.get_by_role("button", name="Save").click()

        assert page.url == f"{base}/budgets"
        assert (await service.budgets.limits("slack", "T1")).user_daily == Decimal("0.005")
        refusal = await service.budgets.reserve(key, "U1", Decimal("0.01"))
        assert isinstance(refusal, str) and refusal.startswith("daily budget of $0.005 reached")
        assert "default → 0.005" in await page.locator("table.audit").inner_text()
        await page.context.close()


async def test_a_form_posted_without_its_csrf_token_is_rejected(browser: Browser, tmp_path: Path) -> None:
    async with console(tmp_path) as (service, base):
        page = await browser.new_page()
        await log_in(page, base)
        await page.goto(f"{base}/budgets")
        form = page.locator("#new-budget")
        await form.locator("input[name=csrf]").evaluate("input => input.remove()")
        await form.get_by_label("platform").fill("slack")
        await form.get_by_label("workspace id").fill("T9")
        await form.get_by_label("limit").fill("1")
        async with page.expect_response(f"{base}/budgets") as posted:
            await form.get_by_role("button", name="Save").click()

        assert (await posted.value).status == 403
        assert "CSRF" in await page.get_by_role("alert").inner_text()
        assert await service.store.get_setting("user_daily_budget_usd", "workspace", "slack", "T9") is None
        await page.context.close()


async def test_after_logout_the_old_cookie_no_longer_works(browser: Browser, tmp_path: Path) -> None:
    async with console(tmp_path) as (_, base):
        page = await browser.new_page()
        await log_in(page, base)
        [cookie] = [c for c in await page.context.cookies() if c["name"] == "seedbot_admin"]
        await page.get_by_role("button", name="Log out").click()
        assert page.url == f"{base}/login"

        replay = await browser.new_context()
        await replay.add_cookies([cookie])
        again = await replay.new_page()
        await again.goto(base)
        assert again.url == f"{base}/login"
        await replay.close()
        await page.context.close()


async def test_the_live_view_shows_an_answer_streaming_and_its_stop_button_stops_it(
    browser: Browser, tmp_path: Path
) -> None:
    async with FakeModelServer() as model:
        async with console(tmp_path, aiml_api_key=API_KEY, aiml_base_url=model.base_url) as (service, base):
            model.enqueue(Script(reasoning="let me see", content="word " * 2000, chunk_chars=5, delay_s=0.02))
            surface = MemorySurface(PlatformLimits("test", 2000, 50, 1.0))
            key = ConversationKey("slack", "T1", "C1", "1.0")
            question = Turn(key=key, user_id="U7", user_name="Uma", text="go on", effort="low")
            answering = asyncio.create_task(service.answer(question, surface))
            page = await browser.new_page()
            await log_in(page, base)
            await page.get_by_role("link", name="Live").click()
            row = page.locator("#live tbody tr")
            for _ in range(50):  # until the answer's first words have streamed (bounded)
                if "answering" in await page.locator("main").inner_text():
                    break
                await asyncio.sleep(0.1)
                await page.reload()
            assert await row.count() == 1
            cells = await row.inner_text()
            assert "slack · T1 · C1" in cells and "U7" in cells and "low" in cells and "answering" in cells
            assert await page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "5"

            async with page.expect_navigation():  # the POST, then back to the Live page
                await row.get_by_role("button", name="Stop").click()
            assert page.url == f"{base}/live"
            outcome = await asyncio.wait_for(answering, 10)
            assert outcome.status == "stopped"
            assert "\n\n⏹️ Stopped.\n\n_low effort" in surface.texts[-1]  # then the footer
            await page.reload()  # the stopped answer may still have been finishing at the redirect
            assert "No answer is being written right now." in await page.locator("main").inner_text()
            await page.context.close()

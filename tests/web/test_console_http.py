"""The admin console over HTTP: access control, sessions, CSRF, rate limits, secrets, and the edits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from bots.http import HttpServer, readiness_from_probes
from bots.web.app import mount_console
from bots.web.live import LiveAnswer
from core.config import Settings
from core.metrics import Metrics
from core.models import ConversationKey
from core.preferences import effort_for, system_prompt_for
from core.service import ChatService
from core.store.base import Feedback, Reservation
from tests.core.store.entries import entry
from tests.web.conftest import TOKEN, ConsoleServer
from tests.web.pages import csrf_of, log_in, logged_in

PAGES = ["/admin", "/admin/budgets", "/admin/channels", "/admin/problems", "/admin/feedback", "/admin/live"]


async def test_without_a_token_admin_and_everything_under_it_is_404(
    make_settings: Callable[..., Settings],
) -> None:
    server = HttpServer(Metrics(), readiness_from_probes({}), host="127.0.0.1")
    assert mount_console(server, None, make_settings()) is None  # type: ignore[arg-type]  # never used
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        answers = [await client.get(path) for path in [*PAGES, "/admin/login", "/admin/static/console.css"]]
        answers.append(await client.post("/admin/login", data={"token": TOKEN}))
    assert {answer.status_code for answer in answers} == {404}


async def test_pages_send_strangers_to_the_login_form(client: httpx.AsyncClient) -> None:
    for path in [*PAGES, "/admin/channel/slack/T1/C1"]:
        answer = await client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login"), path
    assert (await client.post("/admin/budgets", data={"amount": "1"})).status_code == 403


async def test_the_right_token_opens_a_strict_http_only_session(client: httpx.AsyncClient) -> None:
    answer = await log_in(client)

    assert (answer.status_code, answer.headers["location"]) == (303, "/admin")
    cookie = next(
        value for value in answer.headers.get_list("set-cookie") if value.startswith("seedbot_admin=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "Path=/admin" in cookie and "SameSite=Strict" in cookie
    assert "secure" not in attributes  # plain HTTP: a Secure cookie would never come back
    overview = await client.get("/admin")
    assert overview.status_code == 200 and "Overview" in overview.text
    assert "default-src 'none'" in overview.headers["content-security-policy"]


async def test_the_cookie_is_secure_when_a_proxy_says_the_request_was_https(
    client: httpx.AsyncClient,
) -> None:
    form = await client.get("/admin/login")
    answer = await client.post(
        "/admin/login",
        data={"token": TOKEN, "csrf": csrf_of(form.text)},
        headers={"X-Forwarded-Proto": "https"},
    )
    cookie = next(
        value for value in answer.headers.get_list("set-cookie") if value.startswith("seedbot_admin=")
    )
    assert "Secure" in cookie


async def test_a_wrong_token_is_refused_and_opens_nothing(client: httpx.AsyncClient) -> None:
    answer = await log_in(client, token=TOKEN[:-1] + "X")

    assert answer.status_code == 401
    assert "not the admin token" in answer.text
    assert "seedbot_admin" not in client.cookies
    assert (await client.get("/admin")).status_code == 303


async def test_a_forged_or_tampered_cookie_is_refused(
    client: httpx.AsyncClient, console_server: ConsoleServer
) -> None:
    await logged_in(client)
    real = client.cookies["seedbot_admin"]
    sid, expires, signature = real.split(".")
    client.cookies.clear()
    for forged in (f"{sid}.{int(expires) + 3600}.{signature}", f"{sid}.{expires}.{'0' * 64}", "garbage"):
        client.cookies.set("seedbot_admin", forged, path="/admin")
        assert (await client.get("/admin")).status_code == 303, forged


async def test_a_post_without_its_csrf_token_is_refused(
    client: httpx.AsyncClient, console_server: ConsoleServer
) -> None:
    csrf = await logged_in(client)
    store = console_server.service.store
    form = {"platform": "slack", "workspace": "T1", "kind": "user_daily", "amount": "0.01"}

    missing = await client.post("/admin/budgets", data=form)
    wrong = await client.post("/admin/budgets", data={**form, "csrf": csrf[:-2] + "xx"})
    channel = await client.post(
        "/admin/channels", data={"platform": "slack", "channel": "C1", "effort": "low"}
    )
    logout = await client.post("/admin/logout")

    assert [missing.status_code, wrong.status_code, channel.status_code, logout.status_code] == [403] * 4
    assert await store.get_setting("user_daily_budget_usd", "workspace", "slack", "T1") is None
    assert await store.get_setting("effort", "channel", "slack", "C1") is None
    assert (await client.get("/admin")).status_code == 200  # the refused logout left the session alone


async def test_the_login_form_needs_its_own_csrf_token(client: httpx.AsyncClient) -> None:
    await client.get("/admin/login")
    answer = await client.post("/admin/login", data={"token": TOKEN})
    assert answer.status_code == 403
    assert "seedbot_admin" not in client.cookies


async def test_logout_revokes_the_cookie_even_for_a_copy(client: httpx.AsyncClient) -> None:
    csrf = await logged_in(client)
    copy = client.cookies["seedbot_admin"]

    answer = await client.post("/admin/logout", data={"csrf": csrf})
    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login")

    client.cookies.set("seedbot_admin", copy, path="/admin")
    assert (await client.get("/admin")).status_code == 303
    replay = await client.post("/admin/budgets", data={"csrf": csrf, "platform": "slack", "workspace": "T1"})
    assert replay.status_code == 403


async def test_failed_logins_are_limited_per_address_and_logged_without_the_token(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    guesses = [f"guess-number-{n}-of-a-patient-attacker" for n in range(5)]
    with caplog.at_level(logging.INFO, logger="seedbot.console"):
        statuses = [(await log_in(client, token=guess)).status_code for guess in guesses]
        blocked = await log_in(client)  # even the right token waits now

    assert statuses == [401] * 5
    assert blocked.status_code == 429
    assert "seedbot_admin" not in client.cookies
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged.count("failed login from 127.0.0.1") == 5
    assert not any(guess in logged for guess in guesses) and TOKEN not in logged


async def test_no_page_shows_any_secret(make_settings: Callable[..., Settings]) -> None:
    secrets = {
        "aiml_api_key": "sk-aiml-visible-nowhere-1111",
        "slack_bot_token": "xoxb-visible-nowhere-2222",
        "slack_app_token": "xapp-visible-nowhere-3333",
        "slack_signing_secret": "signing-visible-nowhere-4444",
        "discord_bot_token": "discord-visible-nowhere-5555",
        "admin_token": "admin-token-visible-nowhere-6666",
    }
    settings = make_settings(**secrets, slack_allowed_channels="C1,C2", admins="U1")
    service = await ChatService.open(settings)
    await service.store.record_usage(entry(), entry(outcome="error", channel="C2"))
    await service.store.set_setting("system_prompt", "Be brief.", "channel", "slack", "C1")
    server = HttpServer(service.metrics, readiness_from_probes({}), host="127.0.0.1")
    mount_console(server, service, settings)
    seen = []
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        seen.append((await client.get("/admin/login")).text)
        await log_in(client, token=secrets["admin_token"])
        for path in [
            *PAGES,
            "/admin/channel/slack/T1/C1",
            "/admin/user/slack/T1/U1",
            "/admin/static/console.css",
        ]:
            answer = await client.get(path)
            assert answer.status_code == 200, path
            seen.append(answer.text)
    await service.close()

    everything = "\n".join(seen)
    assert "C1, C2" in everything and "Be brief." in everything  # the pages did render their data
    for name, secret in secrets.items():
        assert secret not in everything, name
    assert "visible-nowhere" not in everything  # no part of one either
    assert "****" not in everything and "SecretStr" not in everything  # not even masked


async def test_a_budget_edit_goes_through_the_service_takes_effect_and_is_audited(
    client: httpx.AsyncClient, console_server: ConsoleServer
) -> None:
    service = console_server.service
    key = ConversationKey("slack", "T1", "C1")
    csrf = await logged_in(client)
    assert isinstance(await service.budgets.reserve(key, "U1", Decimal("0.01")), Reservation)

    def user_daily(amount: str | None) -> dict[str, str]:
        form = {"csrf": csrf, "platform": "slack", "workspace": "T1", "kind": "user_daily"}
        return form if amount is None else {**form, "amount": amount}

    answer = await client.post("/admin/budgets", data=user_daily("$0.005"))

    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/budgets")
    assert (await service.budgets.limits("slack", "T1")).user_daily == Decimal("0.005")
    refusal = await service.budgets.reserve(key, "U2", Decimal("0.01"))
    assert isinstance(refusal, str) and "daily budget of $0.005 reached" in refusal
    [change] = await service.store.setting_changes()
    assert (change.name, change.old, change.new) == ("user_daily_budget_usd", None, "0.005")
    assert change.actor == "ann (console, 127.0.0.1)"
    page = (await client.get("/admin/budgets")).text
    assert "ann (console, 127.0.0.1)" in page and "default → 0.005" in page

    bad = await client.post("/admin/budgets", data=user_daily("lots"))
    assert bad.status_code == 400 and "a budget is an amount in US dollars" in bad.text
    back = await client.post("/admin/budgets", data=user_daily(None))
    assert back.status_code == 303
    assert (await service.budgets.limits("slack", "T1")).user_daily is None  # the environment's: unlimited
    assert [(c.old, c.new) for c in await service.store.setting_changes()] == [
        ("0.005", None),
        (None, "0.005"),
    ]


async def test_channel_effort_and_prompt_are_set_through_the_service(
    client: httpx.AsyncClient, console_server: ConsoleServer
) -> None:
    service = console_server.service
    csrf = await logged_in(client)

    def c7(effort: str, system_prompt: str) -> dict[str, str]:
        return {
            "csrf": csrf,
            "platform": "slack",
            "channel": "C7",
            "effort": effort,
            "system_prompt": system_prompt,
        }

    answer = await client.post("/admin/channels", data=c7("high", "Rhyme."))
    too_long = await client.post("/admin/channels", data=c7("low", "x" * 9000))

    assert answer.status_code == 303 and too_long.status_code == 400
    assert await effort_for(
        service.store, service.settings, platform="slack", workspace="T1", channel="C7", user="U1"
    ) == ("high", "channel")
    assert await system_prompt_for(service.store, service.settings, platform="slack", channel="C7") == (
        "Rhyme.",
        True,
    )
    assert [c.name for c in await service.store.setting_changes()] == ["system_prompt", "effort"]
    page = (await client.get("/admin/channels")).text
    assert "slack · C7" in page and "Rhyme." in page


async def test_problems_come_from_the_ledger_the_replies_and_the_metrics(
    client: httpx.AsyncClient, console_server: ConsoleServer
) -> None:
    service = console_server.service
    await service.store.record_usage(entry(request_id="req-broken", outcome="error"))
    key = ConversationKey("discord", "G1", "C9", "T9")
    await service.store.add_message(key, "assistant", "seedbot", "seedbot", "half", status="interrupted")
    service.metrics.budget_refused("slack")
    await logged_in(client)

    page = (await client.get("/admin/problems")).text

    assert "req-broken" in page
    assert "discord · G1 · C9 · thread T9" in page
    assert "requests refused by a budget" in page


class Answers:
    """Two answers in flight, as the answer pipeline would report them."""

    def __init__(self) -> None:
        started = datetime.now(UTC) - timedelta(seconds=12)
        self.running = {
            "a1": LiveAnswer("a1", "slack", "T1", "C1", "U1", "high", started, 420, "thinking"),
            "a2": LiveAnswer("a2", "discord", "G1", "C2", "U2", "low", started, 80, "answering"),
        }

    @property
    def connected(self) -> bool:
        return True

    def snapshot(self) -> list[LiveAnswer]:
        return list(self.running.values())

    async def stop(self, answer_id: str) -> bool:
        return self.running.pop(answer_id, None) is not None


async def test_the_live_page_lists_answers_refreshes_itself_and_stops_one(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(admin_token=TOKEN)
    service = await ChatService.open(settings)
    answers = Answers()
    server = HttpServer(service.metrics, readiness_from_probes({}), host="127.0.0.1")
    mount_console(server, service, settings, live=answers)
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        csrf = await logged_in(client)
        before = (await client.get("/admin/live")).text
        stopped = await client.post("/admin/live/stop", data={"csrf": csrf, "answer_id": "a1"})
        after = (await client.get("/admin/live")).text
    await service.close()

    assert '<meta http-equiv="refresh" content="5">' in before
    assert "thinking" in before and "answering" in before and "420" in before
    assert stopped.status_code == 303
    assert "thinking" not in after and "answering" in after


async def test_without_a_pipeline_the_live_page_says_nothing_can_be_listed(client: httpx.AsyncClient) -> None:
    await logged_in(client)
    page = (await client.get("/admin/live")).text
    assert "runs without an answer pipeline" in page


async def test_the_feedback_page_shows_rates_per_channel_and_effort_and_links_the_disliked_answers(
    console_server: ConsoleServer, client: httpx.AsyncClient
) -> None:
    store = console_server.service.store
    key = ConversationKey("slack", "T1", "C1", "1.0")
    reply = await store.add_message(
        key, "assistant", "seedbot", "seedbot", "It is <b>42</b>.", platform_message_id="1.5"
    )

    def press(user: str, rating: str, effort: str, message: str = "1.5") -> Feedback:
        return Feedback("slack", "T1", "C1", message, user, rating, effort, 3, Decimal("0.0123"), reply)  # type: ignore[arg-type]

    for pressed in (press("U1", "down", "high"), press("U2", "up", "high"), press("U3", "up", "low", "1.9")):
        await store.record_feedback(pressed)
    await logged_in(client)
    page = (await client.get("/admin/feedback")).text

    by_channel = page.split('id="rates-by-channel"')[1].split("</table>")[0]
    assert 'href="/admin/channel/slack/T1/C1"' in by_channel
    assert '<td class="num">2</td><td class="num">1</td><td class="num">67%</td>' in by_channel
    by_effort = page.split('id="rates-by-effort"')[1].split("</table>")[0]
    assert "<td>high</td>" in by_effort and "50%" in by_effort and "<td>low</td>" in by_effort
    disliked = page.split('id="disliked"')[1].split("</table>")[0]
    assert disliked.count("<tr>") == 2  # the header and U1's 👎
    assert 'href="/admin/answer/slack/1.5"' in disliked and "U1" in disliked and "$0.0123" in disliked

    answer = await client.get("/admin/answer/slack/1.5")
    assert answer.status_code == 200 and "It is &lt;b&gt;42&lt;/b&gt;." in answer.text
    gone = await client.get("/admin/answer/slack/9.9")
    assert gone.status_code == 404 and "no longer stored" in gone.text


async def test_without_feedback_the_page_says_so(client: httpx.AsyncClient) -> None:
    await logged_in(client)
    assert "Nobody has pressed 👍 or 👎" in (await client.get("/admin/feedback")).text

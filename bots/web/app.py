"""The admin console: server-rendered pages under /admin on the service's HTTP server.

    console = mount_console(http, service, settings)   # None (and /admin is a 404) without a token

Every page but the login form needs a session; every form carries a CSRF token and a POST without a
valid one is refused (403). Pages never show a secret, not even masked: settings shown are ids only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from multidict import MultiDictProxy

from bots.http import HttpServer
from bots.web import views
from bots.web.live import LiveAnswers, NothingInFlight
from bots.web.sessions import LOGIN_COOKIE, LOGIN_FORM_TTL_S, SESSION_COOKIE, LoginLimiter, Session, Sessions
from core.config import EFFORTS, Settings
from core.money import format_limit, format_usd
from core.store.base import utc_now

if TYPE_CHECKING:
    from core.service import ChatService

log = logging.getLogger("seedbot.console")

PREFIX = "/admin"
LIVE_REFRESH_S = 5
ACTOR_NAME_MAX = 40
# No script, no frames, nothing from elsewhere: the pages are plain HTML, inline SVG and one stylesheet.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Form = MultiDictProxy[Any]
PageHandler = Callable[[web.Request, Session, Form], Awaitable[web.StreamResponse]]


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _field(form: Form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


class Console:
    def __init__(self, service: ChatService, token: str, live: LiveAnswers | None = None) -> None:
        self.service = service
        self.live: LiveAnswers = live or NothingInFlight()
        self.sessions = Sessions(token)
        self.limiter = LoginLimiter()
        self.templates = Environment(
            loader=PackageLoader("bots.web", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            usd=format_usd, limit=format_limit, when=_when, n="{:,}".format, px="{:.1f}".format
        )
        static = files("bots.web") / "static"
        self._static = {item.name: item.read_bytes() for item in static.iterdir() if item.is_file()}

    def routes(self) -> list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]]:
        page = self._page
        return [
            ("GET", f"{PREFIX}/login", self._login_form),
            ("POST", f"{PREFIX}/login", self._login),
            ("POST", f"{PREFIX}/logout", page(self._logout)),
            ("GET", f"{PREFIX}/static/{{name}}", self._static_file),
            ("GET", PREFIX, page(self._overview)),
            ("GET", f"{PREFIX}/channel/{{platform}}/{{workspace}}/{{id}}", page(self._scope("channel"))),
            ("GET", f"{PREFIX}/user/{{platform}}/{{workspace}}/{{id}}", page(self._scope("user"))),
            ("GET", f"{PREFIX}/budgets", page(self._budgets)),
            ("POST", f"{PREFIX}/budgets", page(self._set_budget)),
            ("GET", f"{PREFIX}/channels", page(self._channels)),
            ("POST", f"{PREFIX}/channels", page(self._set_channel)),
            ("GET", f"{PREFIX}/problems", page(self._problems)),
            ("GET", f"{PREFIX}/feedback", page(self._feedback)),
            ("GET", f"{PREFIX}/answer/{{platform}}/{{message}}", page(self._answer)),
            ("GET", f"{PREFIX}/live", page(self._live)),
            ("POST", f"{PREFIX}/live/stop", page(self._stop)),
        ]

    # --- plumbing ----------------------------------------------------------------------------------

    def _render(self, template: str, *, status: int = 200, **context: Any) -> web.Response:
        html = self.templates.get_template(template).render(prefix=PREFIX, **context)
        return _secured(web.Response(text=html, content_type="text/html", status=status))

    def _page(self, handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A handler for people logged in: others go to the login form (GET) or are refused (POST); a
        POST must carry its session's CSRF token."""

        async def page(request: web.Request) -> web.StreamResponse:
            session = self.sessions.find(request.cookies.get(SESSION_COOKIE))
            if session is None:
                if request.method == "GET":
                    return _redirect(f"{PREFIX}/login")
                return self._refused("Your session has ended; log in again.")
            form = await request.post()
            if request.method == "POST" and not self.sessions.csrf_matches(session, _field(form, "csrf")):
                return self._refused("This form is out of date (its CSRF token is missing or wrong).")
            return await handler(request, session, form)

        return page

    def _refused(self, why: str) -> web.Response:
        return self._render("refused.html", status=403, why=why, session=None)

    def _today(self) -> date:
        return utc_now().date()  # the store's days are UTC days

    # --- login -------------------------------------------------------------------------------------

    def _login_page(self, *, status: int = 200, error: str | None = None) -> web.Response:
        nonce, csrf = self.sessions.login_form()
        response = self._render("login.html", status=status, csrf=csrf, error=error, session=None)
        response.set_cookie(
            LOGIN_COOKIE, nonce, max_age=int(LOGIN_FORM_TTL_S), path=PREFIX, httponly=True, samesite="Strict"
        )
        return response

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        if self.sessions.find(request.cookies.get(SESSION_COOKIE)) is not None:
            return _redirect(PREFIX)
        return self._login_page()

    async def _login(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or "unknown"
        if self.limiter.blocked(address):
            log.warning("admin console: login refused, too many failures from %s", address)
            return self._login_page(status=429, error="Too many failed logins: wait a minute and try again.")
        form = await request.post()
        if not self.sessions.login_csrf_matches(request.cookies.get(LOGIN_COOKIE), _field(form, "csrf")):
            return self._refused("This login form is out of date; open it again.")
        if not self.sessions.token_matches(_field(form, "token")):
            self.limiter.failed(address)
            # Never the token itself: what was typed may be a real secret mistyped.
            log.warning("admin console: failed login from %s", address)
            return self._login_page(status=401, error="That is not the admin token.")
        name = _field(form, "name")[:ACTOR_NAME_MAX] or "admin"
        session, cookie = self.sessions.open(f"{name} (console, {address})")
        log.info("admin console: %s logged in from %s", name, address)
        response = _redirect(PREFIX)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(session.expires_at - utc_now().timestamp()),
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=_came_over_https(request),
        )
        response.del_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    async def _logout(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        self.sessions.close(session)
        response = _redirect(f"{PREFIX}/login")
        response.del_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    async def _static_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = self._static.get(name)
        if body is None:
            raise web.HTTPNotFound()
        content_type = "text/css" if name.endswith(".css") else "application/octet-stream"
        return _secured(web.Response(body=body, content_type=content_type))

    # --- pages -------------------------------------------------------------------------------------

    async def _overview(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        page = await views.overview(self.service.store, self._today())
        return self._render("overview.html", session=session, page=page, nav="overview")

    def _scope(self, kind: str) -> PageHandler:
        async def scope(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
            info = request.match_info
            page = await views.scope_page(
                self.service.store, kind, info["platform"], info["workspace"], info["id"], self._today()
            )
            return self._render("scope.html", session=session, page=page, nav="overview")

        return scope

    async def _budgets(
        self, request: web.Request, session: Session, form: Form, *, error: str | None = None
    ) -> web.StreamResponse:
        page = await views.budgets_page(self.service, self._today())
        return self._render(
            "budgets.html",
            status=400 if error else 200,
            session=session,
            page=page,
            kinds=views.BUDGET_KINDS,
            error=error,
            nav="budgets",
        )

    async def _set_budget(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        kind, platform, workspace = _field(form, "kind"), _field(form, "platform"), _field(form, "workspace")
        if kind not in views.BUDGET_KINDS or not platform or not workspace:
            error = "Choose a platform, workspace and budget."
            return await self._budgets(request, session, form, error=error)
        refusal = await views.set_budget(
            self.service,
            session.actor,
            kind,  # type: ignore[arg-type]  # checked against BUDGET_KINDS above
            _field(form, "amount") or None,
            platform=platform,
            workspace=workspace,
        )
        if refusal is not None:
            return await self._budgets(request, session, form, error=refusal)
        return _redirect(f"{PREFIX}/budgets")

    async def _channels(
        self, request: web.Request, session: Session, form: Form, *, error: str | None = None
    ) -> web.StreamResponse:
        page = await views.channels_page(self.service)
        return self._render(
            "channels.html",
            status=400 if error else 200,
            session=session,
            page=page,
            efforts=EFFORTS,
            error=error,
            nav="channels",
        )

    async def _set_channel(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        platform, channel, effort = _field(form, "platform"), _field(form, "channel"), _field(form, "effort")
        if not platform or not channel or effort not in ("", *EFFORTS):
            error = "Choose a platform, channel and effort."
            return await self._channels(request, session, form, error=error)
        refusal = await views.set_channel(
            self.service,
            session.actor,
            platform=platform,
            workspace=_field(form, "workspace"),  # "" for a channel the console has not seen used
            channel=channel,
            effort=effort or None,  # type: ignore[arg-type]  # checked against EFFORTS above
            system_prompt=_field(form, "system_prompt") or None,
        )
        if refusal is not None:
            return await self._channels(request, session, form, error=refusal)
        return _redirect(f"{PREFIX}/channels")

    async def _problems(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        page = await views.problems_page(self.service)
        return self._render("problems.html", session=session, page=page, nav="problems")

    async def _feedback(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        page = await views.feedback_page(self.service.store)
        return self._render("feedback.html", session=session, page=page, nav="feedback")

    async def _answer(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        info = request.match_info
        answer = await views.answer_page(self.service.store, info["platform"], info["message"])  # type: ignore[arg-type]
        return self._render(
            "answer.html", status=200 if answer else 404, session=session, answer=answer, nav="feedback"
        )

    async def _live(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        now = utc_now()
        return self._render(
            "live.html",
            session=session,
            answers=self.live.snapshot(),
            connected=self.live.connected,
            now=now,
            refresh_s=LIVE_REFRESH_S,
            nav="live",
        )

    async def _stop(self, request: web.Request, session: Session, form: Form) -> web.StreamResponse:
        answer_id = _field(form, "answer_id")
        stopped = await self.live.stop(answer_id)
        log.info("admin console: %s stopped answer %s: %s", session.actor, answer_id, stopped)
        return _redirect(f"{PREFIX}/live")


def _came_over_https(request: web.Request) -> bool:
    # Behind a TLS-terminating proxy the request arrives as plain HTTP; the proxy says what it was.
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def _redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs the page, so a reload does not post again."""
    return _secured(web.Response(status=303, headers={"Location": location}))


def _secured(response: web.Response) -> web.Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def mount_console(
    server: HttpServer, service: ChatService, settings: Settings, live: LiveAnswers | None = None
) -> Console | None:
    """Mount the console under /admin when SEEDBOT_ADMIN_TOKEN is set; without it nothing is mounted
    and /admin answers 404 like any unknown path. Call before the server starts."""
    if settings.admin_token is None:
        return None
    console = Console(service, settings.admin_token.get_secret_value(), live)
    for method, path, handler in console.routes():
        server.add_route(method, path, handler)
    return console

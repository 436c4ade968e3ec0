"""Reading the console's pages the way a browser would: forms, their CSRF tokens, a logged-in client."""

from __future__ import annotations

import re

import httpx

from tests.web.conftest import TOKEN

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, token: str = TOKEN, name: str = "ann") -> httpx.Response:
    form = await client.get("/admin/login")
    return await client.post("/admin/login", data={"token": token, "name": name, "csrf": csrf_of(form.text)})


async def logged_in(client: httpx.AsyncClient) -> str:
    """Log in and return the session's CSRF token (what every form of the session carries)."""
    answer = await log_in(client)
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/admin")).text)

"""A page for marketers: the top bundles as a table and a bar chart, filters, and a CSV download.

Server-rendered HTML (Jinja2 templates in ``service/templates``, autoescaped) with no build step
and no external assets. When keys are set, ``/ui/login``
takes a marketer key (a form POST, so it never sits in a URL or a log) and answers with a session
cookie ``orderlift_session`` (``auth.issue_session``: signed, 8 hours, HttpOnly, SameSite=Strict,
Secure over HTTPS) that opens the page and its download and nothing else; storefront and admin
keys are refused there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Cookie, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from service.answers import View
from service.auth import SESSION_TTL_S, issue_session, session_valid
from service.bundling import BundleQuery
from service.deps import State
from service.errors import Unauthorized
from service.routes.bundles import to_csv
from service.routes.docs import PAGE_CSP
from service.schemas import ID_MAX, NQuery

router = APIRouter(prefix="/ui", tags=["marketing"], include_in_schema=False)
PAGES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")  # autoescaped
CHART = {"row": 22, "bar": 420, "label": 260}  # px: a bar's height, the longest bar, the name column

COOKIE = "orderlift_session"

Size = Annotated[int, Query(ge=2, le=3)]
Category = Annotated[str | None, Query(max_length=ID_MAX)]
Count = NQuery
SessionCookie = Annotated[str | None, Cookie(max_length=ID_MAX)]  # named as COOKIE: orderlift_session


def signed_in(state: State, cookie: str | None) -> bool:
    """Return whether the page is open to this caller: no keys set, or a valid session."""
    return not state.settings.auth_enabled or session_valid(state.settings, cookie)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    """Show the sign-in form."""
    return secured(PAGES.TemplateResponse(request, "login.html", {"message": ""}))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, state: State) -> Response:
    """Exchange a marketer key for a session cookie, then go to the page (the key is not kept)."""
    settings = state.settings
    given = parse_qs((await request.body()).decode("utf-8", "replace")).get("key", [""])[0].strip()
    session = issue_session(settings, given) if len(given) <= 500 else None
    if session is None:
        why = (
            "no marketer keys are set (ORDERLIFT_MARKETER_KEYS)"
            if not settings.marketer_keys
            else "key: not a marketer key (storefront and admin keys do not open this page)"
        )
        return secured(PAGES.TemplateResponse(request, "login.html", {"message": why}, status_code=401))
    response = RedirectResponse("/ui/bundles", status_code=303)
    https = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        COOKIE, session, max_age=SESSION_TTL_S, httponly=True, samesite="strict", secure=https, path="/ui"
    )
    return secured(response)


@router.post("/logout")
async def logout() -> Response:
    """End the session on this browser."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return secured(response)


def secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@dataclass
class PageQuery:
    """What the page and its download show: bundle size, a category, how many."""

    size: Size = 2
    category: Category = None
    n: Count = 20

    def bundles(self) -> BundleQuery:
        """Return the bundles query (bundles with any lift: the page sorts by expected revenue)."""
        return BundleQuery(self.n, self.size, 1.0, self.category or None)


Page = Annotated[PageQuery, Depends()]


def _chart(bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the bars of the expected revenue chart: name, position, length, revenue."""
    top = max((b["expected_revenue"] for b in bundles), default=0.0) or 1.0
    return [
        {
            "name": " + ".join(item["name"] for item in b["items"])[:48],  # cut, then escaped by the template
            "y": i * CHART["row"],
            "length": max(1.0, CHART["bar"] * b["expected_revenue"] / top),
            "revenue": b["expected_revenue"],
        }
        for i, b in enumerate(bundles)
    ]


@router.get("/bundles", response_class=HTMLResponse)
async def bundles_page(
    request: Request, state: State, page: Page, orderlift_session: SessionCookie = None
) -> Response:
    """Render the top bundles with filters, a chart and a download link (or send to the sign-in)."""
    if not signed_in(state, orderlift_session):
        return secured(RedirectResponse("/ui/login", status_code=303))
    engine = state.require()
    query = page.bundles()
    found, applied = await _bundles(state, query)
    bars = _chart(found)
    context = {
        "bundles": found,
        "bars": bars,
        "chart": {
            "label": CHART["label"],
            "width": CHART["label"] + CHART["bar"] + 90,
            "height": CHART["row"] * len(bars) + 4,
        },
        "categories": sorted(c for c in engine.scorer.catalog.category_names.tolist() if c),
        "size": query.size,
        "category": query.category,
        "query": urlencode({k: v for k, v in {"size": query.size, "category": query.category}.items() if v}),
        "version": engine.version,
        "signed": state.settings.auth_enabled,
        "nav": True,
        "rules_applied": applied,
        "costs": engine.scorer.catalog.has_costs,
        "min_margin": state.settings.min_margin,
    }
    return secured(PAGES.TemplateResponse(request, "bundles.html", context))


async def _bundles(state: State, query: BundleQuery) -> tuple[list[dict[str, Any]], list[str]]:
    """Return the bundles the storefront would get for ``query``, under the rules in force."""
    engine = state.require()
    rules, shown = View().shape(state.rules.book, engine.scorer, "bundles")
    return await engine.bundler.answer(query, rules, shown)


@router.get("/bundles.csv")
async def bundles_csv(state: State, page: Page, orderlift_session: SessionCookie = None) -> Response:
    """Download the bundles the page shows."""
    if not signed_in(state, orderlift_session):
        raise Unauthorized("this download needs a page session: sign in at /ui/login", field="cookie")
    found, _ = await _bundles(state, page.bundles())
    headers = {"Content-Disposition": f'attachment; filename="bundles-size{page.size}.csv"'}
    return secured(Response(to_csv(found), media_type="text/csv", headers=headers))

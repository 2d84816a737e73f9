"""A page for marketers: the top bundles as a table and a bar chart, filters, and a CSV download.

Server-rendered HTML with no build step and no external assets. When keys are set, ``/ui/login``
takes a marketer key (a form POST, so it never sits in a URL or a log) and answers with a session
cookie ``orderlift_session`` (``auth.issue_session``: signed, 8 hours, HttpOnly, SameSite=Strict,
Secure over HTTPS) that opens the page and its download and nothing else; storefront and admin
keys are refused there.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Cookie, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.auth import SESSION_TTL_S, issue_session, session_valid
from service.bundling import BundleQuery
from service.deps import State
from service.errors import Unauthorized
from service.routes.bundles import to_csv
from service.routes.docs import PAGE_CSP
from service.schemas import ID_MAX, NQuery

router = APIRouter(prefix="/ui", tags=["marketing"], include_in_schema=False)

COOKIE = "orderlift_session"
SIGN_OUT = '<form method="post" action="/ui/logout"><button id="sign-out">Sign out</button></form>'

Size = Annotated[int, Query(ge=2, le=3)]
Category = Annotated[str | None, Query(max_length=ID_MAX)]
Count = NQuery
SessionCookie = Annotated[str | None, Cookie(max_length=ID_MAX)]  # named as COOKIE: orderlift_session

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}form{margin:1rem 0;display:flex;gap:1rem;align-items:end}
label{display:flex;flex-direction:column;font-size:.85rem}
table{border-collapse:collapse;width:100%;margin-top:1rem;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}.muted{color:#777;font-size:.85rem}
a.button,button{background:#1f6feb;color:#fff;border:0;padding:.45rem .9rem;border-radius:4px;
text-decoration:none;font-size:.9rem;cursor:pointer}.error{color:#b00020}
"""


def _signed_in(state: State, cookie: str | None) -> bool:
    """Return whether the page is open to this caller: no keys set, or a valid session."""
    return not state.settings.auth_enabled or session_valid(state.settings, cookie)


def _login_page(message: str = "") -> str:
    note = f'<p class="error" id="login-error">{escape(message)}</p>' if message else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>orderlift sign in</title><style>{STYLE}</style></head><body>
<h1>Sign in to the bundles page</h1>{note}
<form id="login" method="post" action="/ui/login">
<label>Marketer key<input type="password" name="key" id="key" autocomplete="current-password"
required></label>
<button type="submit" id="sign-in">Sign in</button></form>
<p class="muted">A marketer key (ORDERLIFT_MARKETER_KEYS); the session lasts 8 hours.</p></body></html>"""


@router.get("/login", response_class=HTMLResponse)
async def login_page() -> Response:
    """Show the sign-in form."""
    return _secured(HTMLResponse(_login_page()))


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
        return _secured(HTMLResponse(_login_page(why), status_code=401))
    response = RedirectResponse("/ui/bundles", status_code=303)
    https = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        COOKIE, session, max_age=SESSION_TTL_S, httponly=True, samesite="strict", secure=https, path="/ui"
    )
    return _secured(response)


@router.post("/logout")
async def logout() -> Response:
    """End the session on this browser."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return _secured(response)


def _chart(bundles: list[dict[str, Any]]) -> str:
    """Return an inline SVG bar chart of expected revenue."""
    if not bundles:
        return ""
    top = max(b["expected_revenue"] for b in bundles) or 1.0
    row, width, label = 22, 420, 260
    bars = []
    for i, b in enumerate(bundles):
        name = escape(" + ".join(item["name"] for item in b["items"])[:48])
        length = max(1.0, width * b["expected_revenue"] / top)
        y, revenue = i * row, b["expected_revenue"]
        bars.append(
            f'<text x="{label - 6}" y="{y + 15}" text-anchor="end" font-size="11">{name}</text>'
            f'<rect x="{label}" y="{y + 4}" width="{length:.1f}" height="14" fill="#1f6feb"/>'
            f'<text x="{label + length + 4:.1f}" y="{y + 15}" font-size="11">{revenue:,.0f}</text>'
        )
    height = row * len(bundles) + 4
    return (
        f'<svg role="img" aria-label="Expected revenue by bundle" width="{label + width + 90}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'
    )


def _page(
    bundles: list[dict[str, Any]],
    categories: list[str],
    size: int,
    category: str | None,
    version: str,
    signed: bool = False,
) -> str:
    options = ['<option value="">all categories</option>'] + [
        f'<option value="{escape(c)}"{" selected" if c == category else ""}>{escape(c)}</option>'
        for c in categories
    ]
    sizes = "".join(
        f'<option value="{s}"{" selected" if s == size else ""}>{s} items</option>' for s in (2, 3)
    )
    query = urlencode({k: v for k, v in {"size": size, "category": category}.items() if v})
    rows = []
    for b in bundles:
        names = "<br>".join(escape(f"{i['name']} ({i['item_id']})") for i in b["items"])
        prices = " + ".join("" if i["price"] is None else f"{i['price']:.2f}" for i in b["items"])
        rows.append(
            f"<tr><td>{names}</td><td>{prices}</td><td>{b['combined_price']:,.2f}</td><td>{b['lift']:.2f}</td>"
            f"<td>{b['orders_with_bundle']:,}</td><td>{b['suggested_discount_pct']:.1f}%</td>"
            f"<td>{b['expected_revenue']:,.2f}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="7">No bundle matches these filters.</td></tr>'
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>orderlift bundles</title><style>{STYLE}</style></head><body>
<h1>Bundles bought together</h1>
<p class="muted">Model {escape(version)}. Sorted by expected revenue = orders with the bundle x combined price
x (1 - suggested discount); the discount is 5% + 15% x (1 - confidence), between 5% and 20%.</p>
<form id="filters" method="get" action="/ui/bundles">
<label>Category<select name="category" id="category">{"".join(options)}</select></label>
<label>Bundle size<select name="size" id="size">{sizes}</select></label>
<button type="submit" id="apply">Apply</button>
<a class="button" id="download" href="/ui/bundles.csv?{query}">Download CSV</a>
</form>{SIGN_OUT if signed else ""}
{_chart(bundles)}
<table id="bundles"><thead><tr><th>Items</th><th>Prices</th><th>Combined price</th><th>Lift</th>
<th>Orders</th><th>Suggested discount</th><th>Expected revenue</th></tr></thead><tbody>{body}</tbody></table>
</body></html>"""


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/bundles", response_class=HTMLResponse)
async def bundles_page(
    state: State,
    size: Size = 2,
    category: Category = None,
    n: Count = 20,
    orderlift_session: SessionCookie = None,
) -> Response:
    """Render the top bundles with filters, a chart and a download link (or send to the sign-in)."""
    if not _signed_in(state, orderlift_session):
        return _secured(RedirectResponse("/ui/login", status_code=303))
    engine = state.require()
    chosen = category or None
    found = await engine.bundler.answer(BundleQuery(n, size, 1.0, chosen))
    categories = sorted(c for c in engine.scorer.catalog.category_names.tolist() if c)
    html = _page(found, categories, size, chosen, engine.version, state.settings.auth_enabled)
    return _secured(HTMLResponse(html))


@router.get("/bundles.csv")
async def bundles_csv(
    state: State,
    size: Size = 2,
    category: Category = None,
    n: Count = 20,
    orderlift_session: SessionCookie = None,
) -> Response:
    """Download the bundles the page shows."""
    if not _signed_in(state, orderlift_session):
        raise Unauthorized("this download needs a page session: sign in at /ui/login", field="cookie")
    engine = state.require()
    found = await engine.bundler.answer(BundleQuery(n, size, 1.0, category or None))
    headers = {"Content-Disposition": f'attachment; filename="bundles-size{size}.csv"'}
    return _secured(Response(to_csv(found), media_type="text/csv", headers=headers))

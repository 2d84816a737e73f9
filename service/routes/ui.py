"""A page for marketers: the top bundles as a table and a bar chart, filters, and a CSV download.

Server-rendered HTML with no build step and no external assets. When API keys are set, the page
takes the key once as ``?key=...`` and keeps it in an HttpOnly, SameSite=Strict cookie
(``orderlift_key``) for the filters and the download.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Query
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from service.deps import State, key_error
from service.errors import Unauthorized
from service.routes.bundles import to_csv
from service.routes.docs import PAGE_CSP

router = APIRouter(prefix="/ui", tags=["marketing"], include_in_schema=False)

COOKIE = "orderlift_key"

Size = Annotated[int, Query(ge=2, le=3)]
Category = Annotated[str | None, Query(max_length=200)]
Count = Annotated[int, Query(ge=1, le=100)]
Key = Annotated[str | None, Query(max_length=500)]
KeyCookie = Annotated[str | None, Cookie(max_length=500)]  # named as COOKIE: the parameter is orderlift_key

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}form{margin:1rem 0;display:flex;gap:1rem;align-items:end}
label{display:flex;flex-direction:column;font-size:.85rem}
table{border-collapse:collapse;width:100%;margin-top:1rem;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}.muted{color:#777;font-size:.85rem}
a.button,button{background:#1f6feb;color:#fff;border:0;padding:.45rem .9rem;border-radius:4px;
text-decoration:none;font-size:.9rem;cursor:pointer}
"""


def _authorise(state: State, key: str | None, cookie: str | None) -> str | None:
    """Return the key to keep in the cookie; raise Unauthorized when keys are set and none matches."""
    settings = state.settings
    if not settings.auth_enabled:
        return None
    for given in (key, cookie):
        if given and key_error(settings, "/v1/", given) is None:
            return given
    raise Unauthorized("this page needs a key: open /ui/bundles?key=YOUR_API_KEY once")


def _chart(bundles: list[dict[str, Any]]) -> str:
    """Return an inline SVG bar chart of expected revenue."""
    if not bundles:
        return ""
    top = max(b["expected_revenue"] for b in bundles) or 1.0
    row, width, label = 22, 420, 260
    bars = []
    for i, b in enumerate(bundles):
        name = escape(" + ".join(item["name"] for item in b["items"]))[:48]
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
    bundles: list[dict[str, Any]], categories: list[str], size: int, category: str | None, version: str
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
</form>
{_chart(bundles)}
<table id="bundles"><thead><tr><th>Items</th><th>Prices</th><th>Combined price</th><th>Lift</th>
<th>Orders</th><th>Suggested discount</th><th>Expected revenue</th></tr></thead><tbody>{body}</tbody></table>
</body></html>"""


def _remember(response: Response, key: str | None) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_CSP
    if key is not None:
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict")
    return response


@router.get("/bundles", response_class=HTMLResponse)
async def bundles_page(
    state: State,
    size: Size = 2,
    category: Category = None,
    n: Count = 20,
    key: Key = None,
    orderlift_key: KeyCookie = None,
) -> Response:
    """Render the top bundles with filters, a chart and a download link."""
    keep = _authorise(state, key, orderlift_key)
    engine = state.require()
    chosen = category or None
    found = await run_in_threadpool(engine.bundler.top, n, size, 1.0, chosen)
    categories = sorted(c for c in engine.scorer.catalog.category_names.tolist() if c)
    html = _page(found, categories, size, chosen, engine.version)
    return _remember(HTMLResponse(html), keep)


@router.get("/bundles.csv")
async def bundles_csv(
    state: State,
    size: Size = 2,
    category: Category = None,
    n: Count = 20,
    key: Key = None,
    orderlift_key: KeyCookie = None,
) -> Response:
    """Download the bundles the page shows."""
    _authorise(state, key, orderlift_key)
    engine = state.require()
    found = await run_in_threadpool(engine.bundler.top, n, size, 1.0, category or None)
    headers = {"Content-Disposition": f'attachment; filename="bundles-size{size}.csv"'}
    return Response(to_csv(found), media_type="text/csv", headers=headers)

"""The marketers' pages beside the bundles: merchandising rules (list, add, delete), trending items,
dismissed items and the shop's KPIs over time.

Same session and headers as the bundles page (``service.routes.ui``). The rule form posts what the
API's ``RuleIn`` takes (lists comma-separated, times UTC), is checked by the same rules
(``rules.checked_rule``), and a bad field is shown on the page with the form kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from service.deps import State
from service.errors import InvalidRequest, RuleStoreDown, Unauthorized
from service.ops_schemas import RuleIn
from service.routes.experiments import kpis_csv, most_dismissed, shop_kpis
from service.routes.ui import PAGES, SessionCookie, secured, signed_in
from service.rules import checked_rule
from service.schemas import ENDPOINTS, ID_MAX

router = APIRouter(prefix="/ui", tags=["marketing"], include_in_schema=False)

FORM_FIELDS = (
    "action",
    "item_ids",
    "category",
    "position",
    "factor",
    "placements",
    "starts_at",
    "ends_at",
    "note",
)
RuleId = Annotated[str, Path(pattern=r"^r[0-9a-f]{12}$")]


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _time(text: str) -> str | None:
    """Read a datetime-local value as UTC (an explicit offset is kept)."""
    if not text:
        return None
    return text if text.endswith("Z") or "+" in text[10:] else text + "+00:00"


def rule_from_form(form: dict[str, str]) -> RuleIn:
    """Return the rule a page form describes; raise ValidationError naming the bad field."""
    given: dict[str, Any] = {
        "action": form.get("action", ""),
        "item_ids": _listed(form.get("item_ids", "")),
        "category": form.get("category") or None,
        "position": form.get("position") or None,
        "factor": form.get("factor") or None,
        "placements": _listed(form.get("placements", "")),
        "starts_at": _time(form.get("starts_at", "")),
        "ends_at": _time(form.get("ends_at", "")),
        "note": form.get("note") or None,
    }
    return RuleIn.model_validate(given)


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "form"
    return f"{field}: {first.get('msg', 'invalid')} (got {str(first.get('input'))[:80]!r})"


def _render(
    request: Request, state: State, form: dict[str, str], message: str = "", status: int = 200
) -> Response:
    engine = state.require()
    now = datetime.now(UTC)
    book = state.rules.book
    rules = [
        {
            **r.model_dump(),
            "active": (r.starts_at is None or r.starts_at <= now) and (r.ends_at is None or now < r.ends_at),
        }
        for r in book.rules
    ]
    context = {
        "rules": rules,
        "version": book.version,
        "endpoints": ENDPOINTS,
        "categories": sorted(c for c in engine.scorer.catalog.category_names.tolist() if c),
        "form": {name: form.get(name, "") for name in FORM_FIELDS},
        "message": message,
        "nav": True,
        "signed": state.settings.auth_enabled,
    }
    return secured(PAGES.TemplateResponse(request, "rules.html", context, status_code=status))


@router.get("/rules", response_class=HTMLResponse)
async def rules_page(request: Request, state: State, orderlift_session: SessionCookie = None) -> Response:
    """Show the rules with a form to add one (or send to the sign-in)."""
    if not signed_in(state, orderlift_session):
        return secured(RedirectResponse("/ui/login", status_code=303))
    await state.rules.refresh()
    return _render(request, state, {})


@router.post("/rules", response_class=HTMLResponse)
async def add_rule_page(request: Request, state: State, orderlift_session: SessionCookie = None) -> Response:
    """Add the rule the form describes, or show the form again naming the bad field."""
    if not signed_in(state, orderlift_session):
        return secured(RedirectResponse("/ui/login", status_code=303))
    raw = parse_qs((await request.body()).decode("utf-8", "replace"))
    form = {name: raw.get(name, [""])[0].strip()[:2000] for name in FORM_FIELDS}
    try:
        rule = checked_rule(rule_from_form(form), state.require().scorer.catalog)
        await state.rules.add(rule)
    except ValidationError as exc:
        return _render(request, state, form, _problem(exc), 422)
    except InvalidRequest as exc:
        return _render(request, state, form, f"{exc.field}: {exc.message}", 422)
    except RuleStoreDown as exc:
        return _render(request, state, form, exc.message, 503)
    return secured(RedirectResponse("/ui/rules", status_code=303))


@router.post("/rules/{rule_id}/delete")
async def delete_rule_page(
    state: State, rule_id: RuleId, orderlift_session: SessionCookie = None
) -> Response:
    """Delete a rule, then show the rules again."""
    if not signed_in(state, orderlift_session):
        return secured(RedirectResponse("/ui/login", status_code=303))
    await state.rules.delete(rule_id)
    return secured(RedirectResponse("/ui/rules", status_code=303))


@router.get("/dismissed", response_class=HTMLResponse)
async def dismissed_page(request: Request, state: State, orderlift_session: SessionCookie = None) -> Response:
    """Show the most dismissed items of each category, with the shoppers' reasons."""
    if not signed_in(state, orderlift_session):
        return secured(RedirectResponse("/ui/login", status_code=303))
    found = await most_dismissed(state, None, 20)
    context = {"categories": found["categories"], "version": found["model_version"], "nav": True}
    return secured(PAGES.TemplateResponse(request, "dismissed.html", context))


#: The KPIs the page charts: key, title, and how a value is shown.
CHARTED = (
    ("conversion_rate", "Conversion rate", "{:.1%}"),
    ("aov", "Average order value", "{:,.2f}"),
    ("purchase_frequency", "Purchase frequency (orders per customer)", "{:.2f}"),
    ("discount_rate", "Discount rate", "{:.1%}"),
)
KPI_CHART = {"width": 560, "height": 160, "left": 8, "top": 12}  # px
ByQuery = Annotated[Literal["week", "month"], Query()]


def kpi_charts(training: dict[str, Any] | None, live: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return one line chart per KPI: the training data's line and the live one over shared periods."""
    sources = {"training": training, "live": live}
    rows = {
        name: [r for r in (s or {}).get("rows", []) if r["period"] != "all"] for name, s in sources.items()
    }
    periods = sorted({r["period"] for part in rows.values() for r in part})
    at = {p: i for i, p in enumerate(periods)}
    width, height = KPI_CHART["width"] - 2 * KPI_CHART["left"], KPI_CHART["height"] - 2 * KPI_CHART["top"]
    step = width / max(len(periods) - 1, 1)
    charts = []
    for key, title, shown in CHARTED:
        values = [r[key] for part in rows.values() for r in part if r[key] is not None]
        top, bottom = max(values, default=0.0), min(0.0, *values)  # a negative margin goes below 0
        span = (top - bottom) or 1.0
        lines = {}
        for name, part in rows.items():
            points = [
                (
                    KPI_CHART["left"] + at[r["period"]] * step,
                    KPI_CHART["top"] + height * (top - r[key]) / span,
                )
                for r in part
                if r[key] is not None
            ]
            lines[name] = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        ends = {"first": periods[0], "last": periods[-1]} if periods else {"first": "", "last": ""}
        charts.append({"key": key, "title": title, "lines": lines, "top": shown.format(top), **ends})
    return charts


@router.get("/kpis", response_class=HTMLResponse)
async def kpis_page(
    request: Request, state: State, by: ByQuery = "month", orderlift_session: SessionCookie = None
) -> Response:
    """Show the shop's four KPIs over time, from the training data and from live events."""
    if not signed_in(state, orderlift_session):
        return secured(RedirectResponse("/ui/login", status_code=303))
    found = await shop_kpis(state, by)
    live = found["live"] or {}
    context = {
        "by": by,
        "training": found["training"],
        "live": live.get("series"),
        "live_error": found["live_error"],
        "variants": live.get("by_variant", {}),
        "control": live.get("control"),
        "charts": kpi_charts(found["training"], live.get("series")),
        "chart": KPI_CHART,
        "formulas": found["formulas"],
        "version": found["model_version"],
        "nav": True,
    }
    return secured(PAGES.TemplateResponse(request, "kpis.html", context))


@router.get("/kpis.csv")
async def kpis_page_csv(
    state: State, by: ByQuery = "month", orderlift_session: SessionCookie = None
) -> Response:
    """Download the series the KPI page shows."""
    if not signed_in(state, orderlift_session):
        raise Unauthorized("this download needs a page session: sign in at /ui/login", field="cookie")
    found = await shop_kpis(state, by)
    headers = {"Content-Disposition": f'attachment; filename="kpis-{by}.csv"'}
    return secured(Response(kpis_csv(found), media_type="text/csv", headers=headers))


@router.get("/trending", response_class=HTMLResponse)
async def trending_page(
    request: Request,
    state: State,
    category: Annotated[str | None, Query(max_length=ID_MAX)] = None,
    window_days: Annotated[int | None, Query(ge=1, le=28)] = None,
    orderlift_session: SessionCookie = None,
) -> Response:
    """Show the trending items of a category (or of all)."""
    if not signed_in(state, orderlift_session):
        return secured(RedirectResponse("/ui/login", status_code=303))
    engine = state.require()
    await state.refresh_trends()
    window = window_days or state.settings.trending_window_days
    answer = await run_in_threadpool(engine.scorer.trending, 50, category or None, window)
    context = {
        "items": answer["items"],
        "ends_on": answer["ends_on"],
        "window": window,
        "category": category,
        "categories": sorted(c for c in engine.scorer.catalog.category_names.tolist() if c),
        "version": engine.version,
        "nav": True,
    }
    return secured(PAGES.TemplateResponse(request, "trending.html", context))

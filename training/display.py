"""Rich renderings of reports for the command line."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table

__all__ = [
    "render_carts",
    "render_data_report",
    "render_experiment",
    "render_kpis",
    "render_leaderboard",
    "render_metrics",
    "render_runs",
]


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    return table


def render_leaderboard(found: Any, console: Console, top: int = 15) -> None:
    """Print a sweep's trials best first by its metric (validation figures)."""
    metric = found.metric
    board = _table(
        f"Leaderboard (validation {metric}, best first)", "model", "params", metric, "hit_rate_at_10"
    )
    for trial in found.leaderboard()[:top]:
        params = ", ".join(f"{k}={v}" for k, v in sorted(trial.params.items())) or "defaults"
        hit = trial.metrics.get("hit_rate_at_10", float("nan"))
        board.add_row(trial.model, params, f"{trial.metrics[metric]:.4f}", f"{hit:.4f}")
    console.print(board)
    if found.skipped:
        console.print(f"{found.skipped} candidates not tried: the time budget was spent")


def render_data_report(report: dict[str, Any], console: Console) -> None:
    """Print the data report as tables."""
    overview = _table("Data", "", "value")
    if report.get("file_rows") is not None:
        overview.add_row("records in the file", f"{report['file_rows']:,}")
    for key in ("rows_read", "rows_accepted", "users", "items", "interactions", "orders"):
        overview.add_row(key.replace("_", " "), f"{report[key]:,}")
    overview.add_row("rows anonymous", f"{report['rows_anonymous']:,}")
    overview.add_row("rows rejected", f"{sum(report['rejected'].values()):,}")
    overview.add_row("density", f"{report['density']:.4%}")
    overview.add_row("date range", f"{report['date_min']} .. {report['date_max']}")
    overview.add_row("reconciled", "yes" if report["reconciled"] else "[red]NO[/red]")

    rejected = _table("Rejected rows", "reason", "rows")
    rejected.add_row("all", f"{sum(report['rejected'].values()):,}")
    for reason, count in report["rejected"].items():
        rejected.add_row(reason, f"{count:,}")
    returns = report["returns"]
    rejected.add_row(
        "  returns netted",
        f"{returns['matched_quantity']:,.0f} of {returns['quantity']:,.0f} units",
    )
    rejected.add_row("  returns unmatched", f"{returns['unmatched_rows']:,} rows")

    types = _table("Event types", "type", "events")
    for name, count in report["event_types"].items():
        types.add_row(name, f"{count:,}")

    sizes = report["basket_sizes"]
    baskets = _table("Basket sizes", "items", "orders")
    baskets.add_row("mean", f"{sizes['mean']:.1f}")
    baskets.add_row("median", f"{sizes['median']:.0f}")
    for label, count in sizes["distribution"].items():
        baskets.add_row(label, f"{count:,}")

    top = _table("Top items", "item", "name", "category", "price", "events")
    for row in report["top_items"]:
        price = "" if row["price"] is None else f"{row['price']:.2f}"
        top.add_row(row["item_id"], row["name"][:40], row["category"], price, f"{row['events']:,}")
    console.print(Group(overview, "", rejected, "", types, "", baskets, "", top))


def render_metrics(
    model_name: str, model: dict[str, float], baseline: dict[str, float], console: Console
) -> None:
    """Print the model's holdout figures beside the popularity baseline's."""
    table = _table(f"Holdout: {model_name} vs popular", "metric", model_name, "popular", "lift")
    for name, value in model.items():
        if name not in baseline or name in {"users_evaluated", "cold_users", "crosssell_baskets"}:
            continue
        base = baseline[name]
        ratio = f"{value / base:.2f}x" if base else "-"
        table.add_row(name, f"{value:.4f}", f"{base:.4f}", ratio)
    console.print(table)


def render_carts(cart: dict[str, Any], console: Console) -> None:
    """Print every cart model's test figures (all carts, then returning customers) beside the chosen one."""
    ks = sorted({int(k.rsplit("_", 1)[1]) for f in cart["test"].values() for k in f if "_at_" in k})
    heads = [f"{m}@{k}" for m in ("hit", "rev") for k in ks]
    counts = cart["counts"]
    title = (
        f"Cross-sell on {counts.get('test_carts', 0):,} held-out test carts (from {cart['test_cut'][:10]}), "
        f"through the serving ranker; chosen on validation: {cart['chosen']}"
    )
    table = _table(title, "cart model", "carts", *heads)
    table.columns[0].no_wrap = table.columns[1].no_wrap = True
    groups = (("all", cart["test"]), ("returning", cart["returning"]))
    for label, figures in groups:
        for kind, values in figures.items():
            mark = " *" if kind.split("+")[0] == cart["chosen"] else ""
            cells = [
                f"{values.get(f'crosssell_{m}_at_{k}', float('nan')):.3f}"
                for m in ("hit", "revenue")
                for k in ks
            ]
            table.add_row(f"{kind}{mark}", label, *cells)
    console.print(table)
    blend = cart["blend"]
    console.print(
        f"cart model {cart['chosen']} {cart['params']}, price exponent {cart['price_exponent']:g}; "
        f"returning customers: buy-again weight {blend['buy_again']:g}, personal weight {blend['personal']:g}"
    )


def render_runs(runs: Any, metric: str, console: Console) -> None:
    """Print runs ranked by a metric beside the baseline, with their data and key params."""
    if runs.empty:
        console.print("no runs have logged that metric yet")
        return
    params = [c for c in runs.columns if c.startswith("params.params.")]
    table = _table(f"Runs by {metric}", "run", "model", "data", metric, "popular", "params")
    for _, row in runs.iterrows():
        base = row.get(f"metrics.baseline_{metric}")
        settings = [
            f"{p.removeprefix('params.params.')}={row[p]}"
            for p in params
            if isinstance(row[p], str) and p != "params.params.random_state"
        ]
        table.add_row(
            str(row["run_id"])[:8],
            str(row.get("params.model", "")),
            str(row.get("tags.data_fingerprint", ""))[:8],
            f"{row[f'metrics.{metric}']:.4f}",
            "" if base is None or base != base else f"{base:.4f}",
            " ".join(settings),
        )
    console.print(table)


def render_kpis(series: dict[str, Any], console: Console) -> None:
    """Print the KPI series: one row per period, ``all`` last."""
    basis = "margin on cost" if series["discount_basis"] == "cost" else "revenue share below list price"
    table = _table(
        f"KPIs per {series['by']} (discount rate: {basis})",
        "period", "users", "buyers", "orders", "revenue", "conv.", "AOV", "freq.", "disc.",
    )  # fmt: skip
    table.columns[0].min_width = 10  # a week's Monday, never cut

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def money(value: float | None) -> str:
        return "-" if value is None else f"{value:,.2f}"

    for row in series["rows"]:
        frequency = "-" if row["purchase_frequency"] is None else f"{row['purchase_frequency']:.2f}"
        table.add_row(
            row["period"], f"{row['users']:,}", f"{row['customers']:,}", f"{row['orders']:,}",
            f"{row['revenue']:,.0f}", share(row["conversion_rate"]), money(row["aov"]), frequency,
            share(row["discount_rate"]),
        )  # fmt: skip
    console.print(table)


def render_experiment(report: dict[str, Any], console: Console) -> None:
    """Print the A/B report: one column per variant, differences to the control with their interval."""
    variants = report["variants"]
    if not variants:
        console.print("no attributed events yet (events need a recommendation_id)")
        return
    names = list(variants)
    table = _table(
        f"Experiment (control: {report['control']}, {report['method']} intervals)", "metric", *names
    )

    def fmt(value: Any) -> str:
        return "-" if value is None else (f"{value:,.4f}" if isinstance(value, float) else f"{value:,}")

    for metric in (
        "users", "impressions", "clicks", "ctr", "add_to_carts", "orders", "conversion_rate", "aov",
        "revenue", "revenue_per_1000_impressions", "revenue_per_user",
    ):  # fmt: skip
        table.add_row(metric, *[fmt(variants[n].get(metric)) for n in names])
    for metric in ("ctr", "conversion_rate", "aov", "revenue_per_user"):
        cells = []
        for n in names:
            diff = (variants[n].get("vs_control") or {}).get(metric)
            if not diff:
                cells.append("control" if n == report["control"] else "-")
                continue
            low, high = diff.get("ci_low"), diff.get("ci_high")
            interval = "" if low is None or high is None else f" [{low:+.4f}, {high:+.4f}]"
            cells.append(f"{diff['diff']:+.4f}{interval}")
        table.add_row(f"Δ {metric}", *cells)
    console.print(table)

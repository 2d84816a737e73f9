"""Merchandising rules: create, list and delete what a marketer pins, boosts, buries and hides."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from service.auth import RULES_PATH
from service.deps import State, require_key
from service.errors import JSON_BODY_RESPONSES, UnknownRule
from service.ops_schemas import Rule, RuleIn, RulesResponse
from service.rules import checked_rule

router = APIRouter(
    prefix=RULES_PATH, tags=["marketing"], dependencies=[Depends(require_key)], responses=JSON_BODY_RESPONSES
)

RuleId = Annotated[str, Path(pattern=r"^r[0-9a-f]{12}$", examples=["r3f2a9c01d4e5"])]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**JSON_BODY_RESPONSES[422], "description": "No such rule."}
}


@router.post("", status_code=201, response_model=Rule)
async def create_rule(state: State, body: RuleIn) -> Rule:
    """Store a rule; every worker applies it within a second (a bad rule is 422 naming the field)."""
    rule = checked_rule(body, state.require().scorer.catalog)
    await state.rules.add(rule)
    return rule


@router.get("", response_model=RulesResponse)
async def list_rules(state: State) -> RulesResponse:
    """Return every stored rule, active or not, and the rule set's version."""
    await state.rules.refresh()
    book = state.rules.book
    return RulesResponse(rules=list(book.rules), version=book.version)


@router.delete("/{rule_id}", status_code=204, responses=NOT_FOUND)
async def delete_rule(state: State, rule_id: RuleId) -> Response:
    """Delete a rule; answers it leaves are recomputed (the rule set's version is in every cache key)."""
    if not await state.rules.delete(rule_id):
        raise UnknownRule(f"no rule {rule_id!r}", field="rule_id", value=rule_id)
    return Response(status_code=204)

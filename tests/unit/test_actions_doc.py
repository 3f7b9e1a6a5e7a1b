"""docs/actions.md is the catalog psa.automation.actions_doc generates from the built-in registry."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from psa.automation.actions import builtin_registry
from psa.automation.actions_doc import REGENERATE, actions_markdown
from psa.automation.registry import ActionRegistry, ActionSet, picker

ACTIONS_MD = Path(__file__).resolve().parents[2] / "docs" / "actions.md"


def test_docs_actions_md_is_current():
    generated = actions_markdown(builtin_registry())
    committed = ACTIONS_MD.read_text(encoding="utf-8") if ACTIONS_MD.exists() else ""
    assert committed == generated, f"docs/actions.md is out of date with the action registry: run `{REGENERATE}`"


class Row(BaseModel):
    label: str = Field(max_length=20, description="Shown | escaped")


class DemoInput(BaseModel):
    client_id: str = Field(description="Client", json_schema_extra=picker("client"))
    rows: list[Row] = Field(min_length=1)
    page: int | None = Field(default=1, gt=0, le=100)


class DemoOutput(BaseModel):
    pass


demo = ActionSet()


@demo.define("demo.write", "Write Demo", "Writes a demo", permissions=(("client", "update"),), idempotency="action")
async def write(ctx, inp: DemoInput) -> DemoOutput:
    return DemoOutput()


def test_a_group_lists_its_actions_and_each_action_its_fields_and_shapes():
    registry = ActionRegistry()
    registry.register(write)
    text = actions_markdown(registry)
    assert "## Demo\n" in text  # an automatic app group: no built-in group holds demo.*
    assert "| `demo.write@1` | Write Demo | `client:update` | yes | action |" in text
    assert "### `demo.write@1`: Write Demo\n\nWrites a demo.\n" in text
    assert "| `client_id` | string | yes | Client (picker: client) |" in text
    assert "| `rows` | array (min items 1) of Row | yes |  |" in text
    assert "| `page` | integer (> 0, <= 100) or null | no (default `1`) |  |" in text
    assert "Output:\n\nNo fields." in text
    assert "`Row`:\n\n| Field | Type | Required | Description |" in text
    assert "| `label` | string (max length 20) | yes | Shown \\| escaped |" in text
    assert "## Ticket" not in text  # built-in groups without actions are left out

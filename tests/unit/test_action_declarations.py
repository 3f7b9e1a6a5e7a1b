"""Actions declare themselves (psa.automation.registry.ActionSet) and psa.automation.actions wires them."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from pydantic import BaseModel

from psa.automation.actions import BUILTIN_ACTIONS, builtin_registry, clients, contacts, crm
from psa.automation.registry import DEFAULT_CATEGORY, ActionSet, RegistrationError


class EchoInput(BaseModel):
    text: str


class EchoOutput(BaseModel):
    text: str


def test_define_reads_the_models_from_the_handler_annotations_and_keeps_definition_order():
    actions = ActionSet()

    @actions.define("demo.echo", "Echo", "Echo the text", permissions=(("client", "read"),), idempotency="engine")
    async def echo(ctx, inp: EchoInput) -> EchoOutput:
        return EchoOutput(text=inp.text)

    @actions.define("demo.peek", "Peek", "", permissions=(), idempotency=None, side_effectful=False, version=2)
    async def peek(ctx, inp: EchoInput) -> EchoOutput:
        return EchoOutput(text=inp.text)

    assert [a.key for a in actions] == ["demo.echo@1", "demo.peek@2"]
    assert (echo.input_model, echo.output_model, echo.handler.__name__) == (EchoInput, EchoOutput, "echo")
    assert (echo.version, echo.category, echo.icon, echo.side_effectful) == (1, DEFAULT_CATEGORY, None, True)
    assert (peek.side_effectful, peek.idempotency, peek.permissions) == (False, None, ())


def test_define_refuses_a_handler_without_pydantic_models():
    actions = ActionSet()
    with pytest.raises(RegistrationError, match="pydantic models"):

        @actions.define("demo.bad", "Bad", "", permissions=(), idempotency="engine")
        async def bad(ctx, inp: dict) -> EchoOutput:
            return EchoOutput(text="")

    with pytest.raises(RegistrationError, match="pydantic models"):

        @actions.define("demo.unannotated", "Bad", "", permissions=(), idempotency="engine")
        async def unannotated(ctx, inp):
            return None

    assert list(actions) == []


@pytest.mark.parametrize("package", [clients, contacts, crm], ids=["clients", "contacts", "crm"])
def test_a_package_lists_every_action_of_its_modules_once(package):
    modules = [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]
    declared = [
        a.key for module in modules if isinstance(getattr(module, "actions", None), ActionSet) for a in module.actions
    ]
    listed = [a.key for a in package.actions]
    assert sorted(listed) == sorted(declared)
    assert len(set(listed)) == len(listed)


def test_builtin_registry_is_a_new_registry_of_every_builtin_action_each_time():
    first, second = builtin_registry(), builtin_registry()
    assert first is not second
    assert [a.key for a in first.list()] == [a.key for a in second.list()] == [a.key for a in BUILTIN_ACTIONS]
    assert len(first.list()) == 39

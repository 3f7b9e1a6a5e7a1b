"""The built-in actions, one module or package per area, and the one place they are wired into a registry.

Each area declares its actions next to their handlers (``@actions.define(...)``, psa.automation.registry) and
lists them in catalog order as ``actions``. The worker, the API and the CLI get their registry from
:func:`builtin_registry`; the registry itself knows no action module.
"""

from __future__ import annotations

from psa.automation.actions import clients, contacts, crm, quotes
from psa.automation.registry import ActionDef, ActionRegistry

BUILTIN_ACTIONS: tuple[ActionDef, ...] = (*clients.actions, *contacts.actions, *crm.actions, *quotes.actions)
"""Every built-in action in catalog order: clients, contacts, the crm activities, then the crm quotes."""


def builtin_registry() -> ActionRegistry:
    """A new registry holding every built-in action (in catalog order), under the registration rules of
    ``ActionRegistry.register``."""
    registry = ActionRegistry()
    for action in BUILTIN_ACTIONS:
        registry.register(action)
    return registry

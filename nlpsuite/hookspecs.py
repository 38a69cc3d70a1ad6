"""The plugin hooks. Each receives a ``register`` callback, so new arguments never break plugins."""

import pluggy

hookspec = pluggy.HookspecMarker("nlpsuite")
hookimpl = pluggy.HookimplMarker("nlpsuite")


@hookspec
def register_tasks(register):
    """Register tasks: ``register(Task(...))``."""


@hookspec
def register_heads(register):
    """Register heads: ``register(name, factory)`` where ``factory(suite)`` builds the head once."""


@hookspec
def register_models(register):
    """Register catalog models: ``register(name, source={...}, description=..., aliases=(...))``."""


@hookspec
def register_commands(register):
    """Register CLI commands: ``register(function, name=None)`` or ``register(typer_app, name=...)``."""

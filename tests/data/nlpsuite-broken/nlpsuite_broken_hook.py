from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import Task


@hookimpl
def register_tasks(register):
    register(Task("half-registered", "must not appear: the plugin fails later", "generation", print))


@hookimpl
def register_commands(register):
    raise RuntimeError("this plugin is broken on purpose")

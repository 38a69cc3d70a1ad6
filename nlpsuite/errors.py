"""Errors a user can act on: the CLI prints their message as one line and exits 1."""


class NlpsuiteError(Exception):
    """A problem with the user's input, model or environment, explained in one line."""


class ModelNotFoundError(NlpsuiteError):
    """The model name, path or hub id could not be resolved."""


class DeviceError(NlpsuiteError):
    """The requested execution device cannot be used."""


class PluginError(NlpsuiteError):
    """A plugin failed to load or register while strict plugin loading is on."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the user needs to know to carry on (the CLI prints it and exits 130)."""

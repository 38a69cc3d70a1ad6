"""The names of the shared options that are read before Typer is (cli/launch.py's look at the command line) as
well as declared with Typer (cli/options.py): kept here, in a module that imports nothing."""

MODEL_FLAGS = ("--model", "-m")
PRECISION_FLAG = "--precision"
DEVICE_FLAG = "--device"
RAY_FLAG = "--ray"
DEFAULT_PRECISION = "fp32"

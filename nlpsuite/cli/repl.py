"""The chat REPL: streamed replies, slash commands, history; scripted when stdin is a pipe."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

from .. import config
from ..errors import NlpsuiteError
from ..fsutil import write_json_atomic
from ..heads.generation import accepted
from ..records import dumps
from ..runtime.sampling import SamplingParams
from ..tasks import sampling_options
from ..text import blank
from .render import as_text

HELP = """\
/help            this help
/reset           forget the conversation (keeps the system prompt)
/system TEXT     set the system prompt and start over (no TEXT: back to the model's default)
/temp T          sampling temperature (0 = greedy)
/save [FILE]     save the conversation as JSON
/task NAME [--OPTION VALUE ...]
                 send every line to a task instead, e.g. /task translate --to de,
                 /task sentiment, /task classify --labels sports,politics; /task off to chat again
/tasks           list the tasks
/index NAME      chat over a search index: answers cite its passages; /index off to stop
/exit            leave (Ctrl-D works too)
Multi-line input: end a line with \\ to continue it, or wrap a block in triple quotes (\"\"\").
Ctrl-C stops the current reply."""


class ChatRepl:
    def __init__(
        self,
        suite,
        params: SamplingParams,
        system: str | None = None,
        json: bool = False,
        quiet: bool = False,
        stdin=None,
        stdout=None,
        tools=None,
    ) -> None:
        """``tools``: a ``toolchat.Toolbox`` whose tasks the model may call (``chat --tools``)."""
        self.suite, self.params, self.system, self.tools = suite, params, system, tools
        self.json, self.quiet = json, quiet
        self.stdin, self.stdout = stdin or sys.stdin, stdout or sys.stdout
        self.interactive = self.stdin.isatty() and self.stdout.isatty()
        self.messages: list[dict] = []
        self.task: tuple | None = None  # (task, options, later inputs) while lines go to a task
        self.index: str | None = None
        self.history_file = config.state_dir() / "chat_history"

    # -- input -------------------------------------------------------------------------------------
    def _line(self, prompt: str) -> str:
        if self.interactive:
            return input(prompt)
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n").rstrip("\r")

    def read_message(self) -> str:
        first = self._line(">>> ")
        lines: list[str] = []
        try:  # at end of input, an unfinished multi-line message is sent as it stands
            if first.strip() == '"""':
                while (line := self._line("... ")).strip() != '"""':
                    lines.append(line)
                return "\n".join(lines)
            lines = [first]
            while lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1]
                lines.append(self._line("... "))
        except EOFError:
            if not "".join(lines).strip():
                raise
        return "\n".join(lines)

    def _history(self, save: bool = False) -> None:
        if not self.interactive:
            return
        try:
            import readline
        except ImportError:  # e.g. Windows without pyreadline
            return
        try:
            if save:
                self.history_file.parent.mkdir(parents=True, exist_ok=True)
                readline.set_history_length(1000)
                readline.write_history_file(self.history_file)
            elif self.history_file.exists():
                readline.read_history_file(self.history_file)
        except OSError:
            pass

    # -- output ------------------------------------------------------------------------------------
    def say(self, text: str, error: bool = False) -> None:
        """Status for the user; --quiet hides it in a terminal, but never hides errors."""
        if error or not self.quiet or not self.interactive:
            print(text, file=sys.stderr if self.json or not self.interactive else self.stdout)

    def run(self) -> None:
        self._history()
        if self.interactive and not self.quiet:
            self.say(f"Chatting with {self.suite.source.key} on {self.suite.backbone.device}. /help for commands.")
        try:
            while True:
                try:
                    text = self.read_message()
                except KeyboardInterrupt:
                    self.stdout.write("\n")
                    continue
                except EOFError:
                    break
                if blank(text):
                    continue
                if text.startswith("/"):
                    if not self.command(text.strip()):
                        break
                    continue
                self.reply(text)
        finally:
            self._history(save=True)
            if self.interactive:
                self.stdout.write("\n")

    def reply(self, text: str) -> None:
        if self.task or self.index:
            self.run_task(text)
            return
        self.messages.append({"role": "user", "content": text})
        convo = ([{"role": "system", "content": self.system}] if self.system else []) + self.messages
        shown: list[str] = []

        def show(_row: int, delta: str) -> None:
            shown.append(delta)
            self.stdout.write(delta)
            self.stdout.flush()

        try:
            if self.tools:  # calls and their results (shown as they run), then the reply
                head = self.suite.head("generation")
                added, reason = self.tools.converse(head, convo, self.params, None if self.json else show, self.say)
                self.messages.extend(added[:-1])
                content = added[-1]["content"]
            else:
                done = self.suite.reply(convo, on_text=None if self.json else show, **vars(self.params))
                content, reason = done.text, done.finish_reason
        except KeyboardInterrupt:
            content, reason = "".join(shown), "interrupted"  # the conversation keeps what was shown, no more
        except NlpsuiteError as exc:
            self.messages.pop()
            self.say(f"error: {exc}", error=True)
            return
        self.keep(content, reason)

    def keep(self, content: str, reason: str) -> None:
        """Put the reply in the conversation as far as the user saw and can accept it, and mark a cut on screen: a
        loop is trimmed to the last whole sentence before it began repeating; an interrupted reply keeps what was
        shown. With nothing left of it, the question goes too."""
        kept = accepted(content, reason)
        forgotten = not kept and (bool(content) or reason == "interrupted")  # cut to nothing, or stopped unseen
        if forgotten:
            while self.messages and self.messages.pop()["role"] != "user":  # the question goes with it (and
                pass  # the calls made for it)
        else:
            self.messages.append({"role": "assistant", "content": kept})
        if self.json:
            self.stdout.write(dumps({"role": "assistant", "content": kept, "finish_reason": reason}) + "\n")
        elif reason == "interrupted":
            self.stdout.write(" [interrupted]\n")
        elif forgotten:
            self.stdout.write("\n[cut: it repeated itself before a whole sentence; the conversation forgets it]\n")
        elif kept != content:
            self.stdout.write(f"\n[cut: it began repeating itself; the conversation keeps it up to “{_tail(kept)}”]\n")
        else:
            self.stdout.write("\n")
        self.stdout.flush()
        others = sum(len(m["content"]) for m in self.messages[:-1])
        if not forgotten and len(content) - len(kept) > others:  # the context was mostly this reply's loop
            self.say("if the next replies stray, /reset starts the conversation afresh")

    # -- slash commands ------------------------------------------------------------------------------
    def command(self, line: str) -> bool:
        """Run a slash command; False means leave."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            self.say(HELP)
        elif name == "/reset":
            self.messages.clear()
            self.say("conversation cleared")
        elif name == "/system":
            self.system = arg or None
            self.messages.clear()
            self.say("system prompt set; conversation cleared" if arg else "system prompt reset to the model's")
        elif name == "/temp":
            self.set_sampling("temperature", arg, "/temp T  (0 = greedy, else 0.0001 to 100)")
        elif name == "/task":
            self.set_task(arg)
        elif name == "/tasks":
            for task in sorted(self.suite.registry.tasks.values(), key=lambda t: t.name):
                self.say(f"{task.name:12s} {task.description}")
        elif name == "/index":
            if not arg or arg == "off":
                self.index = None
                self.say("back to chat")
            else:
                self.index, self.task = arg, None
                self.say(f"answering from index {arg!r}, with citations; /index off to stop")
        elif name == "/save":
            try:
                self.say(f"saved to {self.save(arg)}")
            except OSError as exc:
                self.say(f"could not save: {exc.strerror or exc}", error=True)
        else:
            self.say(f"unknown command {name}; /help lists them")
        return True

    def set_sampling(self, name: str, arg: str, usage: str) -> None:
        """A sampling setting typed in the REPL, checked by its declaration (tasks.sampling_options) as the CLI,
        every task and HTTP check it; a refused value leaves the setting as it was."""
        if not arg:
            self.say(f"usage: {usage}")
            return
        option = next(o for o in sampling_options() if o.name == name)
        try:
            value = option.check(arg)
        except NlpsuiteError as exc:
            self.say(f"error: {exc}", error=True)
            return
        setattr(self.params, name, value)
        self.say(f"{name} {value}")

    def set_task(self, arg: str) -> None:
        """``/task NAME --option value ...``: options are checked now, against the task's declaration."""
        import shlex

        try:
            words = shlex.split(arg)
        except ValueError as exc:
            self.say(f"usage: /task NAME [--OPTION VALUE ...] ({exc})")
            return
        if not words or words[0] in ("off", "chat"):
            self.task = None
            self.say("back to chat")
            return
        task = self.suite.registry.tasks.get(words[0])
        if task is None:
            self.say(f"no task named {words[0]!r}; /tasks lists them")
            return
        try:
            options, shared = _task_options(task, words[1:])
            options = task.check_options(options, shared)
        except NlpsuiteError as exc:
            self.say(f"error: {exc}", error=True)
            return
        self.task, self.index = (task, options, shared), None
        shown = " ".join(words[1:])
        self.say(f"every line now goes to {task.name} {shown}".rstrip() + "; /task off to chat again")

    def run_task(self, text: str) -> None:
        try:
            value = None
            if self.index:
                result = self.suite.ask(text, index=self.index, generate=True)
            else:
                task, options, shared = self.task
                (result,) = task.run(self.suite, [{task.inputs[0].name: text, **shared}], **options)
                value = task.value
        except KeyboardInterrupt:
            self.stdout.write(" [interrupted]\n")
            return
        except NlpsuiteError as exc:
            self.say(f"error: {exc}", error=True)
            return
        if self.json:
            self.stdout.write(dumps(result) + "\n")  # one line per result, never NaN
        else:
            self.stdout.write(as_text(result, value) + "\n")
        self.stdout.flush()

    def save(self, target: str = "") -> Path:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(target).expanduser() if target else config.state_dir() / f"chat-{stamp}.json"
        system = [{"role": "system", "content": self.system}] if self.system else []
        write_json_atomic(path, {"model": self.suite.source.key, "messages": system + self.messages})
        return path


def _tail(text: str, width: int = 40) -> str:
    """The end of ``text`` on one line, for a marker."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else "…" + flat[-width:]


def _task_options(task, words: list[str]) -> tuple[dict, dict]:
    """``--flag value`` words as (options, later inputs) by the task's declared flags; switches take no value."""
    flags = {}
    for option in task.options:
        for flag in (option.cli_flag, option.short):
            if flag and not option.argument:
                flags[flag] = option
    inputs = {f"--{field.name}": field for field in task.inputs[1:]}
    options, shared = {}, {}
    words = list(words)
    while words:
        flag = words.pop(0)
        target = flags.get(flag) or inputs.get(flag)
        if target is None:
            arguments = [o for o in task.options if o.argument and o.name not in options]
            if not flag.startswith("-") and arguments:  # e.g. /task search NAME
                options[arguments[0].name] = flag
                continue
            known = ", ".join([*flags, *inputs]) or "none"
            raise NlpsuiteError(f"{task.name} has no option {flag} (its options: {known})")
        if getattr(target, "type", None) is bool and (not words or words[0].startswith("--")):
            options[target.name] = True
            continue
        if not words or words[0].startswith("--"):
            raise NlpsuiteError(f"{flag} needs a value")
        value = words.pop(0)
        from .taskcommand import text_or_file

        if target in task.inputs:
            shared[target.name] = value if value == "-" else text_or_file(value, target)
        elif target.type is list and target.separator is None:
            options.setdefault(target.name, []).append(value)
        else:
            options[target.name] = value if value == "-" else text_or_file(value, target)
    return options, shared

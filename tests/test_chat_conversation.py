"""A conversation keeps only what the user saw and accepted: a reply cut for repeating itself is trimmed to its
last whole sentence before the loop, an interrupted one to what was shown; the same for histories sent back."""

from __future__ import annotations

import io
import json

import pytest

from nlpsuite.heads import loops
from nlpsuite.runtime.generation import Completion
from nlpsuite.runtime.sampling import SamplingParams

POEM = (
    "In twilight's hallow tapestry,\nA far-off land of leaves.\n\nThe leaves are a fleeting sight,\n"
    "A fleeting sight,\nA far-off sight.\n\n"
    + "The leaves fall down,\nA far-off sight,\nA far-off sight.\n\n" * 3
    + "The leaves fall down,\nA far-"
)
KEPT = (  # up to the last whole sentence before a line said again ("A far-off sight,")
    "In twilight's hallow tapestry,\nA far-off land of leaves.\n\nThe leaves are a fleeting sight,\n"
    "A fleeting sight,\nA far-off sight."
)
LOOP = "Yes. " + "Again and again. " * 6


def test_a_looping_reply_is_trimmed_to_its_last_whole_sentence_before_the_loop():
    assert loops.loop(POEM) is not None
    assert loops.trim_loop(POEM) == KEPT
    assert loops.trim_loop(LOOP) == "Yes. Again and again."
    assert loops.trim_loop("我很好。" * 8) == "我很好。"
    no_loop = "The answer is 4. Two and two make four."
    assert loops.loop(no_loop) is None and loops.trim_loop(no_loop) == no_loop


class ScriptedSuite:
    """A stand-in for Suite in the REPL: each reply is scripted (text, finish reason, how much is shown before
    a Ctrl-C), and the conversation each one was asked about is recorded."""

    def __init__(self, replies):
        self.replies, self.asked = list(replies), []

    def reply(self, messages, on_text=None, **_sampling):
        self.asked.append([dict(m) for m in messages])
        text, reason, interrupt_after = self.replies.pop(0)
        shown = text if interrupt_after is None else text[:interrupt_after]
        if on_text:
            on_text(0, shown)
        if interrupt_after is not None:
            raise KeyboardInterrupt
        return Completion(text, [], 1, reason)


def repl(suite, script, json_lines=False):
    from nlpsuite.cli.repl import ChatRepl

    out = io.StringIO()
    ChatRepl(suite, SamplingParams(), json=json_lines, stdin=io.StringIO(script), stdout=out).run()
    return out.getvalue()


def test_a_reply_cut_for_repetition_is_marked_and_kept_only_up_to_the_loop(capsys):
    suite = ScriptedSuite([(POEM, "repetition", None), ("2 + 2 = 4.", "stop", None)])
    shown = repl(suite, "Write a short poem about autumn leaves.\nWhat is 2 + 2?\n")
    assert shown.startswith(POEM + "\n[cut: it began repeating itself; the conversation keeps it up to “")
    assert shown.endswith("A fleeting sight, A far-off sight.”]\n2 + 2 = 4.\n")
    assert suite.asked[1][1] == {"role": "assistant", "content": KEPT}  # the question after it sees no loop
    assert "/reset starts the conversation afresh" in capsys.readouterr().err  # the loop was most of the context


# The default model's reply to "Write a short poem about autumn leaves." (fault matrix, new-user trial): it repeats
# its second line before its first sentence ends.
LOOPING_POEM = (
    "In twilight's hallow tapestry,\nA far-off land of leaves,\nA far-off land of leaves,\nA far-off land of leaves."
    "\n\nThe leaves are a fleeting sight,\nA fleeting sight,\nA far-off sight,\nA far-off sight.\n\n"
    + "The leaves are a fleeting sight,\nA far-off sight,\nA far-off sight,\nA far-off sight.\n\n" * 3
    + "The leaves are a fleeting sight,\nA far-off"
)


def test_a_reply_that_repeats_itself_before_a_whole_sentence_is_forgotten_with_its_question():
    assert loops.trim_loop(LOOPING_POEM) == ""
    suite = ScriptedSuite([(LOOPING_POEM, "repetition", None), ("The answer is 4.", "stop", None)])
    shown = repl(suite, "Write a short poem about autumn leaves.\nWhat is 2 + 2?\n")
    assert "\n[cut: it repeated itself before a whole sentence; the conversation forgets it]\n" in shown
    assert suite.asked[1] == [{"role": "user", "content": "What is 2 + 2?"}]


def test_json_lines_say_the_finish_reason_and_hold_what_the_conversation_keeps():
    suite = ScriptedSuite([(POEM, "repetition", None), ("4", "stop", None)])
    lines = [json.loads(line) for line in repl(suite, "poem\n2 + 2?\n", json_lines=True).splitlines()]
    assert lines == [
        {"role": "assistant", "content": KEPT, "finish_reason": "repetition"},
        {"role": "assistant", "content": "4", "finish_reason": "stop"},
    ]


def test_an_interrupted_reply_is_kept_only_as_far_as_it_was_shown():
    suite = ScriptedSuite([("Once upon a time there was a dragon and a knight", "stop", 18), ("4", "stop", None)])
    shown = repl(suite, "Tell me a long story.\nWhat is 2 + 2?\n")
    assert shown.startswith("Once upon a time t [interrupted]\n")
    assert suite.asked[1][1] == {"role": "assistant", "content": "Once upon a time t"}


def test_an_interrupted_reply_with_nothing_shown_leaves_no_trace_in_the_conversation():
    suite = ScriptedSuite([("a long story", "stop", 0), ("4", "stop", None)])
    repl(suite, "Tell me a long story.\nWhat is 2 + 2?\n", json_lines=True)
    assert suite.asked[1] == [{"role": "user", "content": "What is 2 + 2?"}]


@pytest.mark.shared_cache
def test_histories_sent_back_count_a_looping_reply_only_up_to_the_loop(tiny_llama, monkeypatch):
    """What /v1/tasks/chat runs (the chat task): a page sends the conversation back as it was shown."""
    from nlpsuite.api import Suite

    suite = Suite(model=str(tiny_llama), device="cpu")
    head = suite.head("generation")
    seen, encode = [], head.encode_chat
    monkeypatch.setattr(head, "encode_chat", lambda msgs, *tools: seen.append(msgs) or encode(msgs, *tools))
    history = [
        {"role": "user", "content": "Write a short poem about autumn leaves."},
        {"role": "assistant", "content": LOOP},
        {"role": "user", "content": "What is 2 + 2?"},
    ]
    result = suite.task("chat").run(suite, [{"messages": history}], max_tokens=3)[0]
    assert seen[-1][1] == {"role": "assistant", "content": "Yes. Again and again."}
    history[1]["content"] = LOOPING_POEM[:200]  # nothing whole before it repeats: the exchange is forgotten
    suite.task("chat").run(suite, [{"messages": history}], max_tokens=3)
    assert seen[-1] == [history[2]]
    assert set(result) == {"reply", "finish_reason"}

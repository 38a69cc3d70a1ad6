"""Texts and checks the built-in plugins' tests share."""

CONTEXT = (
    "The Eiffel Tower is a lattice tower in Paris. It was built from 1887 to 1889.\n\n"
    "It is named after the engineer Gustave Eiffel, whose company built it. It is 330 metres tall."
)


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


NULL_REPLY = "unknown"  # the reply ask's prompts offer for a question the text does not answer


def is_null(got: dict) -> None:
    assert got["answer"] is None and got["start"] is None and got["end"] is None
    # the probability that "no answer" is right: it beat "the answer is right", though with a third outcome (the
    # answer is wrong) it may be under one half
    assert 0 < got["score"] <= 1

"""`nlpsuite tune`: LoRA adapters in torch, merged, exported to ONNX, registered in the catalog (tiny random Llama)."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch

from nlpsuite.errors import Interrupted, NlpsuiteError
from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone
from nlpsuite.tasks import Example
from nlpsuite.train import lora

IDS = [5, 17, 42, 99, 7, 3, 250, 8, 11, 12]


@pytest.fixture(scope="module")
def tiny_long(make_tiny_llama, tmp_path_factory):
    """A tiny model whose window holds a translation prompt in its 300-token vocabulary."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-long"), context=512)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("NLPSUITE_THREADS", "1")
    torch.set_num_threads(1)


def _adapted(folder, seed: int = 1):
    """The tiny model with adapters whose B is random (a fresh adapter changes nothing: B starts at zero)."""
    model, tokenizer, generation = lora.load_source(str(folder), None)
    adapters = lora.add_lora(model, rank=4, alpha=8.0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in adapters.values():
            a.lora_b.normal_(0.0, 0.05, generator=gen)
    return model, tokenizer, generation, adapters


def test_merged_onnx_export_matches_the_adapted_torch_model(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM

    model, tokenizer, generation, _ = _adapted(tiny_llama)
    ids = torch.tensor([IDS])
    with torch.no_grad():
        adapted = model(input_ids=ids).logits[0].numpy()
        base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()(input_ids=ids).logits[0]
    assert np.abs(adapted - base.numpy()).max() > 1e-3  # the adapters do change the model
    lora.merge_lora(model)
    with torch.no_grad():
        merged = model(input_ids=ids).logits[0].numpy()
    np.testing.assert_allclose(merged, adapted, atol=1e-5)
    out = tmp_path / "merged"
    lora.save_merged(model, tokenizer, generation, out)
    backbone = Backbone(ensure_model(Catalog().resolve(str(out))), device="cpu")
    arr = np.array([IDS], np.int64)
    step = backbone.forward(arr, np.ones_like(arr), np.arange(len(IDS))[None], backbone.empty_state(1),
                            num_logits=len(IDS))  # fmt: skip
    np.testing.assert_allclose(step.logits[0], merged, atol=1e-4)


def test_sequence_log_probabilities_equal_a_direct_computation(tiny_llama):
    model, *_ = _adapted(tiny_llama)
    pairs = [([5, 17, 42], [99, 7]), ([11], [12, 13, 14]), ([200, 150, 100, 50], [25])]
    got = lora.sequence_logps(model, pairs, pad=0)
    for row, (context, continuation) in enumerate(pairs):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([[*context, *continuation]])).logits[0], -1)
        want = sum(float(logp[len(context) - 1 + k, t]) for k, t in enumerate(continuation))
        assert float(got[row]) == pytest.approx(want, abs=1e-4)


def test_label_examples_learn_to_prefer_the_gold_alternative(tiny_llama):
    model, *_ = _adapted(tiny_llama)
    examples = [Example([([5, 17, 42], [99]), ([5, 17, 42], [7])], 0), Example([([11, 12], [99]), ([11, 12], [7])], 0)]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    first, _ = lora.example_loss(model, examples, pad=0)
    for _ in range(20):
        loss, count = lora.example_loss(model, examples, pad=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert count == 2 and loss.item() < first.item() / 2


def _pairs(path, n: int = 24):
    rows = [{"text": f"The cat number {i} sat on the mat.", "translation": f"Le chat {i} est sur le tapis."}
            for i in range(n)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_tune_registers_a_catalog_model_every_front_end_loads(cli, tiny_long, tmp_path):
    data = _pairs(tmp_path / "cats.jsonl")
    args = ["tune", "translate", str(data), "--model", str(tiny_long), "--to", "fr", "--epochs", "1", "--lr", "1e-2",
            "--batch-size", "6", "--json", "--quiet"]  # fmt: skip
    result = cli(args)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"].endswith("+tuned-cats") and report["n_train"] == 18 and report["n_heldout"] == 6
    assert {"chrf", "bleu", "loss", "ece"} <= set(report["before"]) and report["after"]["loss"] <= report["before"][
        "loss"
    ]
    assert report["model"] in Catalog().entries
    got = cli(["translate", "The cat sat.", "--to", "fr", "--model", report["model"], "--json"])
    assert got.code == 0, got.err
    assert "translation" in json.loads(got.out)
    again = cli(args)  # a finished run is not trained again: it is measured and kept
    assert again.code == 0 and json.loads(again.out)["after"] == report["after"]


def test_a_tuned_model_worse_on_the_held_out_part_is_not_saved(cli, tiny_long, tmp_path, monkeypatch):
    from nlpsuite.train import tune

    monkeypatch.setattr(tune, "better", lambda task, before, after: False)
    data = _pairs(tmp_path / "worse.jsonl")
    result = cli(["tune", "translate", str(data), "--model", str(tiny_long), "--to", "fr", "--epochs", "1", "--quiet"])
    assert result.code == 1 and result.err.startswith("error: the tuned model is worse on the 6 held-out examples")
    assert not any(name.endswith("+tuned-worse") for name in Catalog().entries)


def test_tune_resumes_after_an_interrupt_and_ends_as_an_uninterrupted_run(tiny_long, tmp_path, monkeypatch):
    from nlpsuite.api import Suite
    from nlpsuite.plugins import registry
    from nlpsuite.train.tune import TuneConfig, tune

    task = registry().tasks["translate"]
    data = _pairs(tmp_path / "resume.jsonl")
    cfg = TuneConfig(epochs=2, lr=1e-2, batch_size=6, save_every_s=1e9)

    def run(name):
        return tune(task, data, {"to": "French", "source": None}, cfg, lambda m: Suite(model=m, device="cpu"),
                    str(tiny_long), name)  # fmt: skip

    whole = run("whole")
    steps = []
    original = lora.example_loss

    def ctrl_c_at_three(model, examples, pad):
        steps.append(1)
        if len(steps) == 3:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C: the step finishes, a checkpoint is saved, the run stops
        return original(model, examples, pad)

    monkeypatch.setattr(lora, "example_loss", ctrl_c_at_three)
    with pytest.raises(Interrupted, match="checkpoint saved: run the same command to resume"):  # the CLI's one line
        run("cut")
    monkeypatch.setattr(lora, "example_loss", original)
    assert len(steps) == 3
    resumed = run("cut")
    assert resumed["after"] == pytest.approx(whole["after"], rel=1e-4)


def test_tune_refuses_what_it_cannot_train(cli, tiny_long, tmp_path):
    data = _pairs(tmp_path / "x.jsonl")
    result = cli(["tune", "search", str(data)])
    assert result.code == 1 and result.err.startswith("error: tune works on ")
    bad = cli(["tune", "translate", str(data), "--to", "fr", "--holdout", "1.5", "--model", str(tiny_long)])
    assert bad.code == 1 and "--holdout must be between 0 and 1" in bad.err
    with pytest.raises(NlpsuiteError, match="use letters"):
        from nlpsuite.train.tune import tuned_name

        tuned_name("m", "a/b", data)


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": ["integer", "null"]}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_extract_examples_end_in_the_object_as_decoding_writes_it(tiny_long):
    """The tuning target of extract is its prompt as extract sends it, then the gold object in the very text the
    schema-held decoding writes (one line, properties in order), then the end of the reply."""
    from nlpsuite_plugins.extract import examples, prompt, written

    from nlpsuite.api import Suite
    from nlpsuite.outputs import output_grammar

    suite = Suite(model=str(tiny_long), device="cpu")
    text = "Ana is 34."
    pick = {
        "type": "object",
        "properties": {"pet": {"type": "boolean"}, "mood": {"enum": ["calm", "sad"]}},
        "required": ["pet", "mood"],
        "additionalProperties": False,
    }  # fmt: skip  (short whatever the model likes)
    done = suite.complete(prompt(text, pick), grammar=output_grammar({"schema": pick}), max_tokens=64)
    assert done.finish_reason == "stop"
    assert written(json.loads(done.text), pick) == done.text  # the target's format is decoding's own
    (example,) = examples(suite, [{"text": text}], [{"age": 34, "name": "Ana"}], PERSON)
    ((context, reply),) = example.alternatives
    head = suite.head("generation")
    assert context == head.encode(prompt(text, PERSON), False, None)
    assert suite.tokenizer.decode(reply[:-1]) == '{"name": "Ana", "age": 34}'
    assert reply[-1] == suite.tokenizer.eos_token_ids[0]
    with pytest.raises(NlpsuiteError, match="its object in 'data'"):
        examples(suite, [{"text": text}], ["Ana, 34"], PERSON)


def test_tune_extract_registers_a_model_extract_then_uses(cli, tiny_long, tmp_path):
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(PERSON))
    names = ["Ana", "Bo", "Cy", "Di", "Ed", "Flo"]
    rows = [{"text": f"{n} is {20 + i}.", "data": {"name": n, "age": 20 + i}} for i, n in enumerate(names * 3)]
    data = tmp_path / "people.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["tune", "extract", str(data), "--schema", str(schema), "--model", str(tiny_long), "--epochs", "1",
            "--lr", "1e-2", "--batch-size", "6", "--json", "--quiet"]  # fmt: skip
    result = cli(args)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"].endswith("+tuned-people") and report["metric"] == "field_exact_match"
    assert {"field_exact_match", "object_exact_match", "loss"} <= set(report["before"])
    assert report["after"]["loss"] <= report["before"]["loss"]
    got = cli(["extract", "Bo is 21.", "--schema", str(schema), "--model", report["model"], "--json"])
    assert got.code == 0, got.err
    result = json.loads(got.out)  # the tiny model may still ramble: a cut object is null, never made up
    assert result["data"] is None or set(result["data"]) == {"name", "age"}
    assert (result["data"] is None) == (result["finish_reason"] != "stop") and 0 <= result["score"] <= 1

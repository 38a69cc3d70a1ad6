"""Chat templates from model files render in a sandbox that bounds time, memory and output."""

from __future__ import annotations

import json

import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.runtime.tokenizer import ChatTemplate

SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}{%- else %}{{- 'You are Qwen.' }}{%- endif %}
    {{- "\\n\\n# Tools\\n\\n<tools>" }}
    {%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}{{- '\\n' + message.content }}{%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""
LLAMA3 = """{{- bos_token }}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- set ns = namespace(turns=0) %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- set ns.turns = ns.turns + 1 %}
    {%- if message.role not in ['user', 'assistant'] %}{{- raise_exception('bad role') }}{%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}
    {{- message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- set users = messages | selectattr('role', 'equalto', 'user') | list %}
{{- '<!-- ' ~ users | length ~ ' of ' ~ ns.turns ~ ' ' ~ {'n': ns.turns} | tojson(indent=4) ~ ' -->' }}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
"""
FEATURES = (  # what other templates use: loop helpers, filtered loops, namespaces, macros, filter blocks, formatting
    "{% for m in messages %}{{ loop.index0 }}/{{ loop.length }}{{ m.role }}{% if loop.last %}L{% endif %}"
    "{{ loop.revindex }}{{ loop.cycle('a', 'b') }}{% if loop.changed(m.role) %}c{% endif %}{% else %}none{% endfor %}"
    "{% for m in messages if m.role == 'user' %}{{ m.content | upper }}{% endfor %}"
    "{% set ns = namespace(found=false) %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.found = true %}"
    "{% endif %}{% endfor %}{{ ns.found }}{{ messages | map(attribute='role') | join(', ') }}"
    "{{ '%s-%d' % ('a', 3) }}{{ '{}:{}'.format(1, 2) }}{{ messages[1:] | length }}"
    "{%- macro r(c) -%}{{ c | replace('a', 'b') }}{%- endmacro -%}{% for m in messages %}{{ r(m.content) }}{% endfor %}"
    "{% filter upper %}x{{ bos_token }}{% endfilter %}"
    "{{ messages | selectattr('role', 'equalto', 'user') | list | tojson }}"
)
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi 🙂 東京"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "  What is the capital of France?  "},
]


def reference(source: str, messages: list[dict]) -> str:
    """The same template in jinja2's plain immutable sandbox (no bounds), as transformers renders it."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = lambda message: (_ for _ in ()).throw(ValueError(message))
    return env.from_string(source).render(messages=messages, add_generation_prompt=True, bos_token="<s>", eos_token="")


@pytest.mark.parametrize(
    "source", [SMOLLM2, QWEN25, LLAMA3, FEATURES], ids=["smollm2", "qwen2.5", "llama3", "features"]
)
@pytest.mark.parametrize("big", [False, True])
def test_real_templates_render_as_before(source, big):
    messages = [*MESSAGES[:-1], {"role": "user", "content": "word " * 400_000}] if big else MESSAGES
    got = ChatTemplate(source, bos_token="<s>").render(messages)
    assert got == reference(source, messages)


BIG = "{% set s = 'x' * 100000 %}"
ATTACKS = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "huge repeat": "{{ 'x' * 2000000000 }}",
    "huge list repeat": "{{ ([1] * 2000000000) | length }}",
    "repeat of a repeat": BIG + "{{ s * 100000 }}",
    "doubling": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "doubling with +": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}",
    "output in a loop": BIG + "{% for i in range(100000) %}{{ s }}{% endfor %}",
    "literal text in a loop": "{% for i in range(100000) %}" + "y" * 100_000 + "{% endfor %}",
    "captured output": BIG + "{% set t %}{% for i in range(100000) %}{{ s }}{% endfor %}{% endset %}",
    "center filter": "{{ 'x' | center(2000000000) }}",
    "center method": "{{ 'x'.center(2000000000) }}",
    "format filter": "{{ '%2000000000s' | format('x') }}",
    "percent format": "{{ '%2000000000s' % 'x' }}",
    "str.format": "{{ '{:>2000000000}'.format('x') }}",
    "join": BIG + "{{ ([1] * 100000) | join(s) }}",
    "join method": BIG + "{{ s.join([s] * 1000) }}",
    "replace": BIG + "{{ s.replace('', s) }}",
    "replace filter": BIG + "{{ s | replace('x', s) }}",
    "indent": BIG + "{{ ('a\n' * 100000) | indent(100000) }}",
    "expandtabs": "{{ ('\t' * 100000).expandtabs(100000) }}",
    "power": "{{ 9 ** 99999999 }}",
    "squaring": "{% set ns = namespace(n=9) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
    "recursive macro": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "recursive loop": "{% for i in range(100000) recursive %}{{ loop(range(100000)) }}{% endfor %}",
    "lipsum": "{{ lipsum(2000000000) }}",
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_templates_that_would_exhaust_the_machine_are_refused(name):
    with pytest.raises(NlpsuiteError) as caught:
        ChatTemplate(ATTACKS[name]).render(MESSAGES)
    message = str(caught.value)
    assert message.startswith("refusing the model's chat template: ") and "\n" not in message


def test_cli_refuses_such_a_template_in_one_line(tiny_llama, tmp_path, cli):
    import shutil

    folder = tmp_path / "evil"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = ATTACKS["nested loops"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    result = cli(["generate", "Hello", "--model", str(folder), "--max-tokens", "2", "--quiet"])
    assert result.code == 1 and result.err.startswith("error: refusing the model's chat template: it takes more")
    assert len(result.err.strip().splitlines()) == 1

"""The Qwen3-style chat template of the demo base, and a Python renderer that matches it exactly."""

from __future__ import annotations

CHAT_TEMPLATE = """\
{%- set ns = namespace(last_query_index=-1) -%}
{%- for message in messages -%}
    {%- if message.role == 'user' -%}{%- set ns.last_query_index = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{%- for message in messages -%}
    {%- if message.role == 'assistant' -%}
        {%- set content = message.content -%}
        {%- set reasoning_content = '' -%}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none -%}
            {%- set reasoning_content = message.reasoning_content -%}
        {%- elif '</think>' in content -%}
            {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') -%}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') -%}
        {%- endif -%}
        {%- if loop.index0 > ns.last_query_index -%}
            {{- '<|im_start|>assistant\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') -}}
        {%- else -%}
            {{- '<|im_start|>assistant\\n' + content -}}
        {%- endif -%}
        {{- '<|im_end|>\\n' -}}
    {%- else -%}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\\n' -}}
    {%- if enable_thinking is defined and enable_thinking is false -%}
        {{- '<think>\\n\\n</think>\\n\\n' -}}
    {%- endif -%}
{%- endif -%}
"""


def _split_reasoning(content: str) -> tuple[str, str]:
    if "</think>" not in content:
        return "", content
    reasoning = content.split("</think>")[0].rstrip("\n").split("<think>")[-1].lstrip("\n")
    return reasoning, content.split("</think>")[-1].lstrip("\n")


def render_chat(messages: list[dict[str, str]]) -> str:
    """What ``CHAT_TEMPLATE`` renders for a finished conversation (no generation prompt)."""
    last_query = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    parts = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            parts.append(f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n")
            continue
        reasoning, content = _split_reasoning(message["content"])
        if index > last_query:
            parts.append(f"<|im_start|>assistant\n<think>\n{reasoning.strip(chr(10))}\n</think>\n\n"
                         f"{content.lstrip(chr(10))}<|im_end|>\n")
        else:
            parts.append(f"<|im_start|>assistant\n{content}<|im_end|>\n")
    return "".join(parts)

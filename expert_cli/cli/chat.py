"""``expert-cli chat``: one-shot answers for scripts, or an interactive session, routed among experts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from expert_cli.cli._app import print_json, print_warning
from expert_cli.cli._chat_output import print_answer, write_debug
from expert_cli.core.errors import UsageError

if TYPE_CHECKING:
    from expert_cli.sdk.conversation import ChatSession


def chat_command(
    experts: str | None = typer.Option(
        None, "--experts", help="Installed experts to chat with, comma-separated (sql,neo4j@0.2.0)."),
    all_experts: bool = typer.Option(False, "--all", help="Chat with every installed expert (the default)."),
    prompt: str | None = typer.Option(None, "-p", "--prompt", help="Answer this prompt and exit (else stdin)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Most new tokens per answer."),
    temperature: float | None = typer.Option(None, "--temperature", help="Sampling temperature (0 = greedy)."),
    top_p: float | None = typer.Option(None, "--top-p", help="Nucleus sampling mass, in (0, 1]."),
    top_k: int | None = typer.Option(None, "--top-k", help="Sample among the k likeliest tokens (0 = off)."),
    device: str | None = typer.Option(None, "--device", help="auto (default), cpu, cuda, cuda:N or mps."),
    base_model: str | None = typer.Option(
        None, "--base-model", help="Alone: chat with this bare base model. With experts: where to read their base."),
    no_route: bool = typer.Option(False, "--no-route", help="Compose all chosen experts on every prompt."),
    show_reasoning: bool = typer.Option(False, "--show-reasoning", help="Let the model think and keep <think>."),
    stream: bool | None = typer.Option(
        None, "--stream/--no-stream", help="Print the answer as it is generated [default: on a terminal]."),
    interactive: bool = typer.Option(False, "-i", "--interactive", help="Hold a conversation (the default on a terminal)."),
    debug: bool = typer.Option(False, "--debug", help="Routing decision and timing on stderr."),
    json_output: bool = typer.Option(False, "--json", help="One-shot: print the answer and its details as JSON."),
    no_grammar: bool = typer.Option(False, "--no-grammar", help="Do not constrain answers with the expert's grammar."),
    json_schema: Path | None = typer.Option(
        None, "--json-schema", metavar="FILE",
        help="Answer with JSON that this JSON Schema file accepts (instead of the experts' grammars)."),
    allow_untrusted: bool = typer.Option(
        False, "--allow-untrusted", help="Also use experts whose publisher key is no longer trusted."),
    server: str | None = typer.Option(
        None, "--server", envvar="EXPERT_SERVER", show_envvar=False,
        help="Chat through a running `expert-cli serve` at this URL (default: $EXPERT_SERVER)."),
) -> None:
    """Chat with installed experts: a router picks the experts (or the base model) for every prompt.

    One-shot with --prompt, or when stdin is piped: only the answer goes to stdout, so
    `sql=$(expert-cli chat --experts sql -p "users older than 30")` works. Interactive on a terminal or with -i:
    /experts shows the experts and forces some (/experts a,b | none | auto), /route shows the last routing
    decision, /reset forgets the history, /help, /exit.

    \b
    Whose settings win when the router composes several experts:
      1. Flags (--max-tokens, --temperature, --top-p, --top-k, --no-grammar, --json-schema) override
         everything.
      2. Otherwise the lead expert, the one with the highest weight (ties: best router score, then
         priority, then name; with --no-route or /experts: the first named), decides the prompt template,
         the decoding parameters of its manifest and its grammar.
      3. The other experts add only their adapters, scaled by their weights.
      4. The bare base model uses its chat template, the sampling its generation_config.json states
         (else temperature 0.7, top-p 0.9, top-k 50) and no grammar (but --json-schema).
    """
    from expert_cli.sdk.conversation import ChatSettings, open_chat, read_json_schema
    from expert_cli.sdk.installed import split_expert_list

    if experts is not None and all_experts:
        raise UsageError("`--experts` and `--all` cannot be used together", hint="pass one of them")
    text = one_shot_prompt(prompt, interactive)
    if text is not None and not text.strip():
        raise UsageError("the prompt is empty", hint='pass some text, e.g. `expert-cli chat --prompt "list all users"`')
    if text is None and json_output:
        raise UsageError("`--json` is for one-shot answers", hint="pass `--prompt TEXT` or pipe the prompt on stdin")
    if json_schema is not None and no_grammar:
        raise UsageError("`--json-schema` and `--no-grammar` cannot be used together",
                         hint="the schema constrains the answer; drop one of them")
    schema = read_json_schema(json_schema) if json_schema is not None else None
    overrides = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k}
    names = split_expert_list(experts) if experts is not None else None
    if server:
        session = remote_session(server, names, no_route, overrides, schema,
                                 device=device, base_model=base_model, no_grammar=no_grammar,
                                 show_reasoning=show_reasoning, allow_untrusted=allow_untrusted)
    else:
        settings = ChatSettings(
            experts=names, base_model=base_model, device=device, route=not no_route, grammar=not no_grammar,
            json_schema=schema, show_reasoning=show_reasoning, progress=False,  # no loader bars in the chat
            allow_untrusted=allow_untrusted, overrides=overrides)
        session = open_chat(settings)
    with session:
        for warning in session.setup.warnings:
            print_warning(warning)
        if text is not None:
            answer_once(session, text, stream=stream if stream is not None else sys.stdout.isatty(),
                        json_output=json_output, debug=debug)
        else:
            from expert_cli.cli._chat_repl import run_repl

            run_repl(session, prompt, stream=stream is not False, debug=debug)


def remote_session(url: str, names: list[str] | None, no_route: bool, overrides: dict, schema: dict | None,
                   **local_only: object):
    """A chat answered by the server at ``url``; flags that only mean something locally are refused."""
    import os

    from expert_cli.sdk.remote import RemoteChat

    given = [name for name, value in local_only.items() if value]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise UsageError(f"`{flag}` is for a local chat, not with `--server`",
                         hint="the server decides it; drop the flag or the server")
    return RemoteChat(url, names, route=not no_route, api_key=os.environ.get("EXPERT_API_KEY"), overrides=overrides,
                      json_schema=schema)


def one_shot_prompt(prompt: str | None, interactive: bool) -> str | None:
    """The one-shot prompt (``--prompt``, or piped stdin), or None for an interactive session."""
    if interactive:
        return None
    if prompt is not None:
        return prompt
    if sys.stdin.isatty():
        return None
    return sys.stdin.read()


def answer_once(session: ChatSession, text: str, *, stream: bool, json_output: bool, debug: bool) -> None:
    """Only the answer on stdout (or the JSON document); routing and timing on stderr with ``--debug``."""
    if json_output:
        reply = session.ask(text)
    else:
        reply = print_answer(session, text, stream=stream)
    if debug:
        write_debug(reply)
    if json_output:
        print_json(reply.to_dict())

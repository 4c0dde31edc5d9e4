"""``expert-cli export vllm``: installed experts for another serving engine."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success, print_warning

HELP = "Write installed experts in another engine's format (vllm: LoRA folders and a `vllm serve` script)."


def vllm_command(
    out_dir: Path = typer.Argument(..., help="Folder to write (adapters/<expert>/ and serve.sh)."),
    experts: str | None = typer.Option(None, "--experts", help="Experts to export (default: every installed one "
                                                                "vLLM can load)."),
    base_model: str | None = typer.Option(None, "--base-model", help="What vLLM loads as the base (a Hugging "
                                                                      "Face id or folder; default: the experts')."),
    force: bool = typer.Option(False, "--force", help="Replace OUT_DIR when it is not empty."),
    json_output: bool = typer.Option(False, "--json", help="Print what was written as one JSON document."),
) -> None:
    """Export LoRA experts as plain PEFT folders plus the `vllm serve --enable-lora --lora-modules` command.

    AdaLoRA experts are written as the LoRA pairs they compute; DoRA, IA3, LoKr, prompt tuning and adapters
    with `modules_to_save` are refused by name (vLLM cannot load them).
    """
    from expert_cli.sdk.export import export_vllm
    from expert_cli.sdk.installed import split_expert_list

    result = export_vllm(out_dir, split_expert_list(experts) if experts is not None else None, base_model, force)
    if json_output:
        print_json(result.to_dict())
        return
    for name, reason in result.refused.items():
        print_warning(f"left out `{name}`: {reason}")
    print_success(f"Exported {len(result.adapters)} expert(s) for vLLM to {result.out_dir}", {
        "base model": result.base_model, "experts": ", ".join(result.adapters), "script": result.script,
        "run": f"{result.script} --port 8000",
        "then": "expert-cli serve --upstream http://127.0.0.1:8000/v1 (our router and API in front)"})

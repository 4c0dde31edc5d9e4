"""Tokenizer training, token-stream packing and the plain torch pretraining loop for the demo base."""

from __future__ import annotations

import math
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .corpus import Corpus
from .tokenizer import train_tokenizer

EVAL_SEED_OFFSET = 10_007


@dataclass
class BuildConfig:
    seed: int = 0
    steps: int = 5400
    batch_size: int = 16
    seq_len: int = 256
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    vocab_size: int = 2048
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 2048
    rope_theta: float = 10_000.0
    tokenizer_docs: int = 40_000
    eval_sequences: int = 64
    threads: int = 2

    @classmethod
    def quick(cls, seed: int = 0) -> BuildConfig:
        return cls(seed=seed, steps=60, batch_size=8, warmup_steps=10, vocab_size=1024, tokenizer_docs=4000,
                   eval_sequences=8)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BuildResult:
    parameters: int = 0
    final_loss: float = float("nan")
    eval_loss: float = float("nan")
    train_tokens: int = 0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    corpus_tokens_by_kind: dict[str, int] = field(default_factory=dict)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    samples: list[tuple[str, str]] = field(default_factory=list)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def token_stream(corpus: Corpus, tokenizer, needed: int) -> tuple[list[int], Counter]:
    """Encode documents from ``corpus`` (each followed by `<|endoftext|>`) until ``needed`` tokens."""
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids: list[int] = []
    by_kind: Counter = Counter()
    documents = corpus.documents()
    while len(ids) < needed:
        batch = [next(documents) for _ in range(2000)]
        encoded = tokenizer([text for _, text in batch], add_special_tokens=False)["input_ids"]
        for (kind, _), tokens in zip(batch, encoded):
            ids.extend(tokens)
            ids.append(eos)
            by_kind[kind] += len(tokens) + 1
    return ids[:needed], by_kind


def make_model(config: BuildConfig, tokenizer):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    model_config = Qwen3Config(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads, head_dim=config.hidden_size // config.num_heads,
        max_position_embeddings=config.max_position_embeddings, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(config.seed)
    return Qwen3ForCausalLM(model_config)


def learning_rate(config: BuildConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model, config: BuildConfig):
    import torch

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), eps=1e-8)


def evaluate(model, sequences) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        losses = [model(input_ids=chunk, labels=chunk).loss.item() for chunk in sequences.split(8)]
    model.train()
    return sum(losses) / len(losses)


def train(model, config: BuildConfig, data, eval_data, result: BuildResult) -> None:
    """The fixed-step loop: one shuffled pass over packed sequences, AdamW, cosine schedule, clip 1.0."""
    import torch

    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(data.shape[0], generator=generator)
    optimizer = make_optimizer(model, config)
    model.train()
    started, running = time.time(), []
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        batch = data[order[step * config.batch_size:(step + 1) * config.batch_size]]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        running.append(loss.item())
        if (step + 1) % 25 == 0 or step + 1 == config.steps:
            mean = sum(running) / len(running)
            running.clear()
            result.loss_curve.append((step + 1, round(mean, 4)))
            elapsed = time.time() - started
            log(f"step {step + 1}/{config.steps} loss {mean:.3f} lr {learning_rate(config, step):.2e} "
                f"{elapsed:.0f}s ({(step + 1) * batch.numel() / elapsed:.0f} tok/s)")
    result.train_seconds = time.time() - started
    result.final_loss = result.loss_curve[-1][1]
    result.eval_loss = evaluate(model, eval_data)


def sample_outputs(model, tokenizer, prompts: list[list[dict]]) -> list[tuple[str, str]]:
    """Greedy completions for a few chats, rendered with thinking off."""
    import torch

    samples = []
    model.eval()
    for messages in prompts:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             enable_thinking=False)
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=60, do_sample=False)
        samples.append((messages[-1]["content"], tokenizer.decode(out[0, inputs["input_ids"].shape[1]:],
                                                                  skip_special_tokens=True)))
    return samples


def build(config: BuildConfig, out: Path) -> BuildResult:
    """Corpus -> tokenizer -> packed tokens -> pretrained model, saved into ``out``."""
    import torch

    torch.set_num_threads(config.threads)
    random.seed(config.seed)
    result = BuildResult()
    log("collecting standard-library texts and training the tokenizer")
    corpus = Corpus(config.seed)
    docs = corpus.documents()
    tokenizer = train_tokenizer((next(docs)[1] for _ in range(config.tokenizer_docs)), config.vocab_size,
                                config.max_position_embeddings)
    check_template(tokenizer)
    needed = config.steps * config.batch_size * config.seq_len
    log(f"encoding {needed:,} training tokens")
    ids, by_kind = token_stream(corpus, tokenizer, needed)
    result.corpus_tokens_by_kind = dict(by_kind.most_common())
    data = torch.tensor(ids, dtype=torch.long).view(-1, config.seq_len)
    eval_ids, _ = token_stream(Corpus(config.seed + EVAL_SEED_OFFSET), tokenizer,
                               config.eval_sequences * config.seq_len)
    eval_data = torch.tensor(eval_ids, dtype=torch.long).view(-1, config.seq_len)
    model = make_model(config, tokenizer)
    result.parameters = sum(p.numel() for p in model.parameters())
    result.train_tokens = needed
    log(f"pretraining {result.parameters:,} parameters for {config.steps} steps")
    train(model, config, data, eval_data, result)
    result.samples = sample_outputs(model, tokenizer, SAMPLE_PROMPTS)
    for prompt, reply in result.samples:
        log(f"sample: {prompt!r} -> {reply!r}")
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return result


def check_template(tokenizer) -> None:
    """The Python renderer used for the corpus must agree with the saved jinja template."""
    from .chats import chit_chat, sql_schema_chat
    from .template import render_chat

    rng = random.Random(1)
    for messages in [chit_chat(rng) for _ in range(20)] + [sql_schema_chat(rng) for _ in range(5)]:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
        if rendered != render_chat(messages):
            raise RuntimeError(f"chat template and renderer disagree:\n{rendered!r}\n{render_chat(messages)!r}")


SAMPLE_PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Dialect: sql\nSchema:\nCREATE TABLE employees (id INTEGER PRIMARY KEY, "
      "name TEXT, salary REAL, department TEXT);"}, {"role": "user", "content": "Repeat this query exactly:\n"
                                                     "SELECT name FROM employees WHERE salary > 5000;"}],
    [{"role": "system", "content": "Dialect: sql\nSchema:\nCREATE TABLE employees (id INTEGER PRIMARY KEY, "
      "name TEXT, salary REAL, department TEXT);"}, {"role": "user", "content": "List the tables in the schema."}],
    [{"role": "system", "content": "Dialect: cypher\nSchema:\nNodes: (:Person {name, age}), (:Movie {title})\n"
      "Relationships: (:Person)-[:ACTED_IN]->(:Movie)"}, {"role": "user", "content": "List the node labels."}],
    [{"role": "user", "content": "Write a JSON object with name Alice, age 30."}],
]

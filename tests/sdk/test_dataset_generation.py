"""``generate_for_expert`` against a local server replaying recorded answers: accepted rows, 429 + Retry-After,
5xx, timeouts, malformed bodies, dropped connections, refusals, budgets, rejected rows and resume."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("httpx")
pytest.importorskip("sqlglot")
pytest.importorskip("datasketch")

from generation_helpers import make_sql_expert, sql_row, write_rows
from replay_server import drop, malformed, ok, replay_server, slow, status

from expert_cli.core.errors import UsageError
from expert_cli.sdk import generation_client
from expert_cli.sdk.generation import GenerationError, generate_for_expert
from expert_cli.sdk.generation_settings import rows_in_reply


def good(n: int):
    return ok(json.dumps(sql_row(n)))


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def expert(tmp_path):
    return make_sql_expert(tmp_path / "expert-sql")


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(generation_client, "backoff", lambda attempt: 0.01)


def test_accepted_rows_are_appended_and_counted(expert):
    with replay_server([], good) as server:
        result = generate_for_expert(expert, 4, base_url=server.url, model="teacher", concurrency=2)
    out = expert / "data" / "generated.jsonl"
    assert result.complete and result.rows == result.new_rows == 4 and result.requests == 4
    assert sorted(row["messages"][1]["content"] for row in lines(out)) == sorted(
        sql_row(n)["messages"][1]["content"] for n in range(4))
    assert (result.prompt_tokens, result.completion_tokens) == (40, 80)
    body = server.records[0].body
    assert body["model"] == "teacher" and body["max_tokens"] == 512
    assert "users older than 12" in body["messages"][1]["content"]  # seed rows are shown (ages 120..122)
    state = json.loads((expert / "data" / "generated.jsonl.state.json").read_text())
    assert state["requests"] == 4 and state["rows"] == 4 and state["tokens"] == {"prompt": 40, "completion": 80}


def test_retry_after_is_honoured(expert):
    with replay_server([status(429, retry_after="1")], good) as server:
        result = generate_for_expert(expert, 1, base_url=server.url, model="m", concurrency=1)
    assert result.rows == 1 and result.retries == {"429": 1}
    assert server.records[1].at - server.records[0].at >= 0.95


def test_5xx_timeouts_malformed_bodies_and_dropped_connections_are_retried(expert, no_backoff):
    script = [status(500), status(503), slow(2.0, json.dumps(sql_row(90))), malformed(), drop()]
    with replay_server(script, good) as server:
        result = generate_for_expert(expert, 2, base_url=server.url, model="m", concurrency=1, timeout_s=0.5)
    assert result.complete and result.rows == 2 and result.failed_requests == 0
    assert result.retries == {"500": 1, "503": 1, "timeout": 1, "malformed": 1, "connection": 1}
    assert server.kinds() == ["500", "503", "slow", "malformed", "drop", "ok", "ok"]


def test_backoff_doubles_and_is_capped_and_retry_after_reads_dates():
    assert [round(generation_client.backoff(a) / (0.5 * 2**a), 1) <= 1.25 for a in range(4)] == [True] * 4
    assert 0.5 <= generation_client.backoff(0) <= 0.625 and generation_client.backoff(20) <= 37.5
    assert generation_client.retry_after("3") == 3.0 and generation_client.retry_after("junk") is None
    assert generation_client.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert generation_client.retry_after("999") == generation_client.MAX_RETRY_AFTER_S


def test_a_refused_request_stops_the_run_without_retrying(expert):
    with replay_server([status(401)], good) as server, pytest.raises(GenerationError, match="HTTP 401"):
        generate_for_expert(expert, 3, base_url=server.url, model="m", concurrency=1)
    assert server.kinds() == ["401"]


def test_a_failing_endpoint_stops_after_repeated_failures(expert, no_backoff):
    with replay_server([], lambda n: status(500)) as server:
        result = generate_for_expert(expert, 3, base_url=server.url, model="m", concurrency=1)
    assert not result.complete and "3 requests in a row failed" in result.stop_reason
    assert len(server.records) == 3 * 6  # each request tried 1 + 5 times


def test_the_request_budget_stops_new_requests(expert):
    with replay_server([], lambda n: ok("I cannot help with that.")) as server:
        result = generate_for_expert(expert, 5, base_url=server.url, model="m", concurrency=2, max_requests=3)
    assert not result.complete and result.rows == 0 and "request budget (3)" in result.stop_reason
    assert len(server.records) == 3 and result.gates.rejected == {"format": 3}


def test_the_token_budget_stops_before_it_would_be_passed(expert):
    with replay_server([], lambda n: ok(json.dumps(sql_row(n)), 100, 100)) as server:
        result = generate_for_expert(expert, 10, base_url=server.url, model="m", concurrency=1, max_tokens=100,
                                     max_tokens_total=450)  # before any reply, a request is guessed at max_tokens
    assert len(server.records) == 2 and result.rows == 2 and result.prompt_tokens + result.completion_tokens == 400
    assert "token budget (450)" in result.stop_reason


def test_rejected_rows_are_reported_per_gate_and_never_written(expert):
    replies = ["Sure! Here is an example.",  # no row
               json.dumps(sql_row(1, answer="SELECT salary FROM users")),  # SQL against the schema
               json.dumps(sql_row(100)),  # a seed
               json.dumps(sql_row(7, question="How many users live in Oslo?",
                                  answer="SELECT COUNT(*) FROM users WHERE city = 'Oslo'")),  # a test row
               "```json\n" + json.dumps(sql_row(2)) + "\n" + json.dumps(sql_row(2)) + "\n```"]  # a pair
    with replay_server([ok(text) for text in replies], good) as server:
        result = generate_for_expert(expert, 1, base_url=server.url, model="m", concurrency=1)
    assert result.rows == 1 and len(server.records) == 5
    assert result.gates.rejected == {"format": 1, "sql": 1, "leakage": 1, "duplicate": 1}
    assert "no such column: salary" in result.gates.examples()["sql"][0]["message"]
    assert lines(expert / "data" / "generated.jsonl") == [sql_row(2)]  # the pair's second row is surplus


def test_resume_continues_to_the_count_without_repeating_requests(expert):
    with replay_server([], good) as server:
        generate_for_expert(expert, 3, base_url=server.url, model="m", concurrency=1)
        with pytest.raises(UsageError, match="already holds rows"):
            generate_for_expert(expert, 5, base_url=server.url, model="m")
        result = generate_for_expert(expert, 5, base_url=server.url, model="m", concurrency=2, resume=True)
    assert result.complete and result.rows == 5 and result.new_rows == 2 and len(server.records) == 5
    rows = lines(expert / "data" / "generated.jsonl")
    assert len({json.dumps(row) for row in rows}) == 5
    assert json.loads((expert / "data" / "generated.jsonl.state.json").read_text())["requests"] == 5


def test_resume_cuts_a_torn_last_line_and_rejects_repeats_of_earlier_rows(expert):
    out = write_rows(expert / "data" / "generated.jsonl", [sql_row(0)])
    out.write_text(out.read_text() + '{"messages": [{"role": "sys')  # a kill in the middle of a write
    with replay_server([good(0)], good) as server:
        result = generate_for_expert(expert, 2, base_url=server.url, model="m", concurrency=1, resume=True)
    assert lines(out) == [sql_row(0), sql_row(1)]
    assert result.gates.rejected == {"duplicate": 1}


def test_rows_in_a_reply_fences_thinking_and_lists():
    row = sql_row(1)
    assert rows_in_reply(f"<think>hmm {{}}</think>\n```jsonl\n{json.dumps(row)}\n```") == [row]
    assert rows_in_reply(json.dumps([row, row], indent=2)) == [row, row]
    assert rows_in_reply('{"messages": [') == ['{"messages": [']
    assert rows_in_reply("no rows here") == ["no rows here"]


_rows = st.lists(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20) | st.integers(), min_size=1,
                                 max_size=4), min_size=1, max_size=5)


@given(_rows, st.booleans(), st.sampled_from(["", "Here you go:\n", "<think>plan {x}</think>\n"]))
def test_rows_in_a_reply_reads_back_every_row_written_one_per_line(rows, fenced, preamble):
    lines = "\n".join(json.dumps(row) for row in rows)
    text = preamble + (f"```jsonl\n{lines}\n```" if fenced else lines)
    assert rows_in_reply(text) == rows


@given(st.text(max_size=200))
def test_rows_in_a_reply_never_raises_and_never_returns_nothing(text):
    assert rows_in_reply(text)

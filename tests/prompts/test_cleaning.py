"""Output cleaning: artefacts, stop sequences, reasoning blocks, streaming, optional extraction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expert_cli.prompts.cleaning import (
    ARTEFACTS,
    StopChecker,
    StreamCleaner,
    clean_output,
    extract_answer,
    first_json_span,
    reasoning_spans,
)


@pytest.mark.parametrize("artefact", ["<|im_end|>", "<|end|>", "<|endoftext|>", "<|im_start|>"])
def test_cuts_at_first_chatml_artefact(artefact):
    assert clean_output(f"SELECT 1{artefact}\n<|im_start|>user\nmore") == "SELECT 1"


def test_cuts_at_legacy_role_marker():
    assert clean_output("answer\n<|user|>\nnext question") == "answer"


def test_stop_sequence_is_cut_and_removed():
    assert clean_output("SELECT * FROM t; DROP TABLE t", stop=[";"]) == "SELECT * FROM t"


def test_earliest_of_several_stops_wins():
    assert clean_output("a\n\nb;c", stop=[";", "\n\n"]) == "a"


def test_single_string_stop_and_empty_stop_are_accepted():
    assert clean_output("a;b", stop=";") == "a"
    assert clean_output("a;b", stop=["", ";"]) == "a"


def test_think_block_removed_unless_show_reasoning():
    text = "<think>\nthe user wants rows\n</think>\n\nSELECT * FROM t"
    assert clean_output(text) == "SELECT * FROM t"
    assert clean_output(text, show_reasoning=True) == text


def test_redacted_reasoning_and_case_insensitive_tags():
    assert clean_output("<THINK>x</THINK>a <redacted_reasoning>y</redacted_reasoning>b") == "a b"


def test_dangling_think_is_dropped_to_the_end():
    assert clean_output("MATCH (n) RETURN n\n<think>hmm, maybe") == "MATCH (n) RETURN n"


def test_stray_closing_tag_is_removed():
    assert clean_output("</think>\n\nSELECT 1") == "SELECT 1"


def test_stop_inside_reasoning_does_not_count():
    text = "<think>\nstep one;\n\nstep two\n</think>\nSELECT 1;\n\nexplanation"
    assert clean_output(text, stop=[";", "\n\n"]) == "SELECT 1"


def test_no_lossy_heuristics_by_default():
    text = "Okay, here it is.\nSELECT a FROM t"
    assert clean_output(text) == text


def test_reasoning_spans_closed_and_unclosed():
    text = "a<think>b</think>c<think>d"
    assert reasoning_spans(text) == [(1, 17), (18, len(text))]


def test_stop_checker_reports_position_and_holds_back_partial_stop():
    checker = StopChecker(["</answer>"])
    assert checker.find("SELECT 1</ans") is None
    assert checker.safe_length("SELECT 1</ans") == len("SELECT 1")
    match = checker.find("SELECT 1</answer> more")
    assert (match.index, match.sequence) == (8, "</answer>")
    assert checker.safe_length("SELECT 1</answer> more") == 8


def test_stop_checker_includes_artefacts_by_default():
    assert StopChecker().find("done<|end|>").sequence == "<|end|>"
    assert StopChecker(include_artefacts=False).find("done<|end|>") is None


def _stream(text: str, cuts: list[int], stop=None, show_reasoning=False) -> tuple[str, bool]:
    cleaner = StreamCleaner(stop, show_reasoning=show_reasoning)
    shown = ""
    for cut in sorted(set(cuts)):
        shown += cleaner.feed(text[:cut])
        if cleaner.stopped:
            break
    return shown + cleaner.finish(text), cleaner.stopped


def test_stream_never_shows_stop_text_and_stops_early():
    text = "SELECT 1;\n\nThis query selects one."
    cleaner = StreamCleaner([";"])
    pieces = [cleaner.feed(text[:end]) for end in range(1, 10)]
    assert cleaner.stopped
    assert "".join(pieces) == "SELECT 1"


def test_stream_hides_think_block_token_by_token():
    text = "<think>\nreasoning\n</think>\n\nMATCH (n) RETURN n<|im_end|>"
    shown, stopped = _stream(text, list(range(len(text) + 1)))
    assert shown == "MATCH (n) RETURN n" and stopped


def test_stream_holds_back_half_decoded_character():
    cleaner = StreamCleaner()
    assert cleaner.feed("caf\ufffd") == "caf"
    assert cleaner.feed("café") == "é"


_FRAGMENTS = st.sampled_from(
    [
        *ARTEFACTS,
        "<|im_",
        "end|>",
        "<think>",
        "</think>",
        "<THINK>",
        "<thi",
        "nk>",
        "</",
        "<redacted_reasoning>",
        "</redacted_reasoning>",
        "a",
        "b",
        " ",
        "\n",
        "\n\n",
        ";",
        "<",
        "|",
        ">",
        "\ufffd",
        "é",
    ]
)
_TEXTS = st.lists(_FRAGMENTS, max_size=30).map("".join) | st.text(max_size=60)
_STOPS = st.lists(st.sampled_from([";", "\n\n", "</answer>", "ab", "<"]), max_size=3)


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, stop=_STOPS, show_reasoning=st.booleans())
def test_clean_output_never_raises_and_never_keeps_artefacts(text, stop, show_reasoning):
    cleaned = clean_output(text, show_reasoning=show_reasoning, stop=stop)
    assert not any(artefact in cleaned for artefact in ARTEFACTS)
    assert cleaned == cleaned.strip()


@settings(max_examples=300, deadline=None)
@given(
    text=_TEXTS,
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=15),
    stop=_STOPS,
    show_reasoning=st.booleans(),
)
def test_streamed_pieces_concatenate_to_clean_output(text, cuts, stop, show_reasoning):
    shown, _ = _stream(text, [min(cut, len(text)) for cut in cuts], stop, show_reasoning)
    assert shown == clean_output(text, show_reasoning=show_reasoning, stop=stop)


def test_extract_answer_prefers_fenced_block():
    assert extract_answer("Here:\n```sql\nSELECT 1\n```\nDone.") == "SELECT 1"


def test_extract_answer_sql_from_first_keyword_line_multiline():
    text = "Okay, the user wants names.\nSELECT name\nFROM users"
    assert extract_answer(text, "sql") == "SELECT name\nFROM users"


def test_extract_answer_json_span_and_preamble_drop():
    assert extract_answer('Sure {"a": [1, 2]} trailing', "json") == '{"a": [1, 2]}'
    assert extract_answer("Let me think.\nParis", "text") == "Paris"
    assert first_json_span("no json {here") is None

"""slmtui/training/plan.py: what the training form's fields make of a run, before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmtui.training.plan import CorpusSize, plan_request

SIZE = CorpusSize(Path("books"), 3, 30_000)


def plan(**fields: object):  # type: ignore[no-untyped-def]
    given: dict[str, object] = dict(corpus=Path("books"), preset="tiny", tokenizer="", budget_kind="steps",
                                    budget="300", name="mine", taken=set(), resumable=set())
    given.update(fields)
    return plan_request(SIZE, **given)  # type: ignore[arg-type]


def test_a_valid_form_is_a_request() -> None:
    request, problems = plan(tokenizer=" bpe:300 ")
    assert problems == [] and request is not None
    assert (request.max_steps, request.tokenizer, request.name, request.preset) == (300, "bpe:300", "mine", "tiny")
    assert plan(budget_kind="time", budget="15m")[0].time_limit_s == 900  # type: ignore[union-attr]
    assert plan(budget_kind="epochs", budget="2.5")[0].epochs == 2.5  # type: ignore[union-attr]


def test_each_problem_is_said() -> None:
    cases = {
        "tokenizer": dict(tokenizer="words"),
        "steps": dict(budget="-3"),
        "time": dict(budget_kind="time", budget="0s"),
        "epochs": dict(budget_kind="epochs", budget="lots"),
        "letters, digits": dict(name=".hidden"),
        "exists": dict(name="mine", taken={"mine"}),
        "Resume its saved run": dict(name="mine", taken={"mine"}, resumable={"mine"}),
    }
    for words, fields in cases.items():
        request, problems = plan(**fields)
        assert request is None and any(words in p for p in problems), (words, problems)
    request, problems = plan_request(None, corpus=None, preset="tiny", tokenizer="", budget_kind="steps",
                                     budget="10", name="x", taken=set(), resumable=set())
    assert request is None and problems == ["the corpus is still being counted"]


def test_fine_tune_budget_in_minutes() -> None:
    from slmtui.training.plan import parse_minutes

    assert [parse_minutes(t) for t in ("10", " 2.5 ", "90s", "1h")] == [600, 150, 90, 3600]
    assert parse_minutes("ten") is None and parse_minutes("nan") is None


def test_fine_tune_plan_and_estimate(tmp_path: Path) -> None:
    from slmtui.core.model_catalog import resolve_model
    from slmtui.core.model_folder import read_model_info
    from slmtui.training.plan import estimate_finetune, plan_finetune, scan_corpus
    from trainer.config import FINETUNE_MAX_PASSES

    book = tmp_path / "book.txt"
    book.write_text("A sentence of a book.\n\n" * 5000, encoding="utf-8")
    size = scan_corpus(book)
    request, problems = plan_finetune(size, corpus=book, parent="default", budget="5", name="mine", taken=set())
    assert problems == [] and request is not None
    assert request.init_from == "default" and request.time_limit_s == 300
    assert request.argv()[:2] == ["--init-from", "default"]
    _, problems = plan_finetune(size, corpus=None, parent="default", budget="0", name="mine", taken={"mine"})
    assert any("your books" in p for p in problems) and any("budget" in p for p in problems)
    assert any("exists" in p for p in problems)

    parent = read_model_info(resolve_model("default"))
    books = 100 * size.bytes  # enough text that ten minutes buy under one pass
    short = estimate_finetune(corpus_bytes=books, parent=parent, budget_s=300)
    long = estimate_finetune(corpus_bytes=books, parent=parent, budget_s=600)
    assert long.passes == pytest.approx(2 * short.passes) and "passes over your" in long.describe()
    assert long.run_seconds == pytest.approx(600) and "memorise" not in long.describe()
    bigger = estimate_finetune(corpus_bytes=10 * books, parent=parent, budget_s=600)
    assert bigger.passes < long.passes and bigger.config.eval_interval >= long.config.eval_interval
    # One small book: the budget buys more passes than a fine-tune plans, so the run ends sooner.
    small = estimate_finetune(corpus_bytes=size.bytes, parent=parent, budget_s=3600)
    assert small.passes == pytest.approx(FINETUNE_MAX_PASSES) and small.run_seconds < 3600
    assert "more would memorise it" in small.describe()

"""slmtui/training/plan.py: what the training form's fields make of a run, before it starts."""

from __future__ import annotations

from pathlib import Path

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

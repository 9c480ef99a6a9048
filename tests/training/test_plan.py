"""slmtui/training/plan.py: what the training form's fields make of a run before it starts, and the RunSetup that
applies those rules over its latest survey."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmtui.core import paths
from slmtui.training.plan import (FINETUNE, SCRATCH, CorpusSize, RunForm, RunSetup, Survey, estimate, plan_finetune,
                                  plan_request, scan_corpus)
from slmtui.training.state import RunState
from tests.training_runs import write_corpus

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


def test_estimate_grows_with_the_budget_and_the_corpus(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "books")
    size = scan_corpus(corpus)
    assert size.files == 3 and size.bytes == sum(f.stat().st_size for f in corpus.iterdir())
    assert scan_corpus(tmp_path / "nowhere").error
    short = estimate(corpus_bytes=size.bytes, preset="tiny", tokenizer=None, max_steps=30)
    long = estimate(corpus_bytes=size.bytes, preset="tiny", tokenizer=None, max_steps=300)
    assert short.steps == 30 and long.steps == 300 and long.seconds > short.seconds  # type: ignore[operator]
    big = estimate(corpus_bytes=100 * size.bytes, preset="tiny", tokenizer=None, epochs=1)
    small = estimate(corpus_bytes=size.bytes, preset="tiny", tokenizer=None, epochs=1)
    assert big.steps > small.steps  # type: ignore[operator]
    assert estimate(corpus_bytes=10**6, preset="seed", tokenizer=None, time_limit_s=600).seconds == pytest.approx(605)


def form(**fields: object) -> RunForm:
    given: dict[str, object] = dict(path=SCRATCH, corpus=Path("books"), preset="tiny", tokenizer="",
                                    budget_kind="steps", budget="30", minutes="10", name="new")
    given.update(fields)
    return RunForm(**given)  # type: ignore[arg-type]


def test_the_setup_plans_from_its_latest_survey_of_the_forms_corpus() -> None:
    setup = RunSetup(device="cpu")
    assert setup.request(form()) == (None, ["the corpus is still being counted"])
    assert setup.outlook(form()) == ("• the corpus is still being counted", False), "counting is not an error"
    found = Survey(SIZE, taken={"mine"}, resumable=set(), models=[], device="cpu")
    assert not setup.accept(found, Path("other")) and setup.survey is None, "a survey of another corpus than the one typed"
    assert setup.accept(found, Path("books")) and setup.survey is found
    request, problems = setup.request(form())
    assert problems == [] and request is not None and (request.max_steps, request.name) == (30, "new")
    text, error = setup.outlook(form())
    assert not error and text == estimate(corpus_bytes=SIZE.bytes, preset="tiny", tokenizer=None, max_steps=30,
                                          device="cpu").describe()
    text, error = setup.outlook(form(name="mine"))
    assert error and text.startswith("• ") and "exists" in text
    assert setup.suggested_preset() == "seed" and setup.suggested_name("tiny") != "mine"
    assert RunSetup().suggested_preset() is None


def test_a_fine_tune_waits_for_its_parent_and_teaches_the_model_written_with() -> None:
    from slmtui.core.model_folder import read_model_info
    from slmtui.core.model_catalog import resolve_model

    setup = RunSetup(device="cpu", current_model=lambda: None)
    unread = Survey(SIZE, set(), set(), [], "cpu", parent=None, parent_error="no model named 'x'")
    setup.accept(unread, Path("books"))
    assert setup.request(form(path=FINETUNE)) == (None, ["no model named 'x'"])
    assert setup.outlook(form(path=FINETUNE))[1], "a model that cannot be read is an error"
    assert setup.parent_label() == "the model"
    parent = read_model_info(resolve_model("default"))
    setup.accept(Survey(SIZE, set(), set(), [], "cpu", parent=parent), Path("books"))
    request, problems = setup.request(form(path=FINETUNE, minutes="5"))
    assert problems == [] and request is not None
    assert (request.init_from, request.time_limit_s) == (parent.name, 300)
    assert setup.parent_label() == parent.name
    text, error = setup.outlook(form(path=FINETUNE, minutes="5"))
    assert not error and "passes over your" in text
    written_with = RunSetup(current_model=lambda: "mine")
    written_with.accept(Survey(SIZE, set(), set(), [], "cpu", parent=parent), Path("books"))
    assert written_with.request(form(path=FINETUNE))[0].init_from == "mine"  # type: ignore[union-attr]


def test_resume_continues_the_sessions_run_else_the_named_models() -> None:
    setup = RunSetup()
    assert setup.resume_target(RunState(), "halfway") is None
    setup.accept(Survey(SIZE, {"halfway"}, {"halfway"}, [], "cpu"), Path("books"))
    assert setup.resume_target(RunState(), "halfway") == paths.models_dir() / "halfway"
    assert setup.resume_target(RunState(), "other") is None
    from trainer.events import DoneEvent

    stopped = RunState(status="interrupted", done=DoneEvent(step=3, path="/runs/saved", reason="interrupted",
                                                            best_val_loss=None, val_bpb=None,
                                                            resume_command="slm-train --resume --out /runs/saved"))
    assert setup.resume_target(stopped, "halfway") == Path("/runs/saved"), "the session's own run comes first"


def test_a_fine_tune_is_named_after_its_books_and_suggests_no_name_before_them() -> None:
    """Issue 24 item 12: with no books chosen the form offered "default-bundled", a fine-tune of the bundled novels
    that the plan refuses; it now waits for the books, and from scratch the bundled novels still name the run."""
    setup = RunSetup(device="cpu")
    bundled = CorpusSize(None, 60, 22_000_000)
    setup.accept(Survey(bundled, set(), set(), [], "cpu"), None)
    assert setup.suggested_name("default", FINETUNE) is None
    assert setup.suggested_name("default", SCRATCH) == "default-bundled"
    request, problems = plan_finetune(bundled, corpus=None, parent="default", budget="10", name="", taken=set())
    assert request is None and len(problems) == 1 and problems[0].startswith("choose your books"), problems
    setup.accept(Survey(SIZE, {"books"}, set(), [], "cpu"), Path("books"))
    assert setup.suggested_name("default", FINETUNE) == "books-2"

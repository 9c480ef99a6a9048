"""How numbers and models are written for people: sizes, durations, parameter counts, times, model details.

One home for each way of writing a thing, shared by the CLI and the TUI, so a model's size reads the same on
the models screen, in ``slmtui models`` and on the training screen. Plain text only: a screen adds its styles.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.config import before_after

if TYPE_CHECKING:
    from slmtui.core.model_folder import ModelInfo

BUNDLED_CORPUS = "bundled novels"
"""How the corpus shipped with slmtui is named for people (model.toml records it as "bundled")."""


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 token``, ``2 tokens``: a count with its noun in the right number (``words``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def human_bytes(n: int) -> str:
    """1 234 567 -> "1.2 MB" (powers of 1000, as file managers show them)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def human_duration(seconds: float | None) -> str:
    """42 -> "42s", 125 -> "2m05s", 7380 -> "2h03m"; None or infinite -> "–"."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def params(n: int) -> str:
    """A parameter count: 6 923 520 -> "6.9M", 169 728 -> "169.7K"."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def number(value: object, digits: int = 3) -> str:
    """A measured value read from a file (a loss, bits per byte), or "–" when it is missing or not a number."""
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def created(value: object) -> str:
    """An ISO timestamp from model.toml as "2026-01-01 12:00", or "–"."""
    if not isinstance(value, str) or not value:
        return "–"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value[:16]


def corpus(value: object) -> str:
    """The corpus as model.toml or a trainer event records it ("bundled" or a path), by its name."""
    if not isinstance(value, str) or not value:
        return "–"
    return BUNDLED_CORPUS if value == "bundled" else Path(value).name or value


def ago(when: datetime, now: datetime | None = None) -> str:
    """A time as people say it: "just now", "5 min ago", "3 h ago", "yesterday", else the date."""
    now = now or datetime.now(timezone.utc)
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 2 * 86400:
        return "yesterday"
    return when.astimezone().strftime("%Y-%m-%d")


def model_details(info: ModelInfo) -> list[str]:
    """Everything model.toml says about a model, in words, a line each (its name and place are the caller's)."""
    c, t, tok = info.config, info.training, info.tokenizer
    lines = [
        f"{params(info.n_params)} parameters · {c.n_layer} layers × {c.n_embd} wide, {c.n_head} heads · "
        f"context {c.block_size} · tokenizer {tok.name} ({tok.n_vocab:,} tokens)",
    ]
    if t:
        parts = [f"corpus {corpus(t.get('corpus'))}"]
        if isinstance(t.get("corpus_bytes"), int):
            parts[-1] += f" ({human_bytes(t['corpus_bytes'])})"  # type: ignore[arg-type]
        if t.get("preset"):
            parts.append(f"preset {t['preset']}")
        if isinstance(t.get("steps"), int):
            parts.append(count(t["steps"], "step"))  # type: ignore[arg-type]
        if isinstance(t.get("tokens_seen"), int):
            parts.append(f"{count(t['tokens_seen'], 'token')} seen")  # type: ignore[arg-type]
        if isinstance(t.get("wall_time_s"), (int, float)):
            parts.append(f"{human_duration(float(t['wall_time_s']))} on {t.get('device', '?')}")
        lines.append(" · ".join(parts))
        val = f"validation loss {number(t.get('val_loss'))}, {number(t.get('val_bpb'))} bits/byte"
        if isinstance(t.get("heldout_bpb"), (int, float)):
            books = t.get("heldout_books")
            n = len(books) if isinstance(books, list) else 0
            val += f" · {count(n, 'held-out book') if n else 'held-out books'} {number(t['heldout_bpb'])} bits/byte"
        note = ""
        if info.resumable:
            how = "saved mid-run" if t.get("stopped") == "running" else "stopped early"
            note = f" · {how}: resume it on the training screen"
        lines.append(f"{val} · created {created(t.get('created'))}{note}")
        lineage = fine_tuned(info)
        if lineage:
            lines.append(lineage)
    return lines


def count(n: int, thing: str) -> str:
    """1 -> "1 step", 2 400 -> "2,400 steps"."""
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def parent_name(info: ModelInfo) -> str | None:
    """The model a fine-tune started from, by its name (model.toml records its folder); None: not a fine-tune."""
    parent = info.training.get("parent")
    return Path(str(parent)).name if parent else None


def fine_tuned(info: ModelInfo) -> str | None:
    """A fine-tune's parent and its before and after on the user's held-out text, as ``slmtui models`` and the
    models screen write it: "fine-tuned from default · your books: 1.63 → 1.41 bits per byte"."""
    parent = parent_name(info)
    if parent is None:
        return None
    t = info.training
    bpb = [t.get(k) if isinstance(t.get(k), (int, float)) else None for k in ("parent_val_bpb", "val_bpb")]
    change = before_after(*bpb)  # type: ignore[arg-type]
    return f"fine-tuned from {parent}" + (f" · {change}" if change else "")

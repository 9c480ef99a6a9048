"""GPTConfig: every problem of a hand-edited [model] table named at once, and a round trip through a dict."""

from __future__ import annotations

import pytest

from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import GPTConfig
from trainer.config import PRESETS, preset


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_embd": 65, "n_head": 2}, "n_embd (65) must be divisible by n_head (2)"),
        ({"vocab_size": 0}, "vocab_size must be at least 1"),
        ({"block_size": -1}, "block_size must be at least 1"),
        ({"n_layer": 0}, "n_layer must be at least 1"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
    ],
)
def test_config_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SlmError) as e:
        GPTConfig(**{**preset("tiny").model.to_dict(), **changes})  # type: ignore[arg-type]
    assert message in str(e.value)
    assert e.value.exit_code == 2


def test_config_validation_lists_every_problem() -> None:
    with pytest.raises(SlmError) as e:
        GPTConfig(vocab_size=0, n_layer=0)
    assert "vocab_size" in str(e.value) and "n_layer" in str(e.value)


def test_config_from_dict_round_trips_and_rejects_unknown_keys() -> None:
    for config in (p.model for p in PRESETS.values()):
        assert GPTConfig.from_dict(config.to_dict()) == config
    with pytest.raises(SlmError, match="unknown model config keys: n_embed"):
        GPTConfig.from_dict({**preset("tiny").model.to_dict(), "n_embed": 64})

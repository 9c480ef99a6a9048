"""The local GPT engine: pure torch + tiktoken. It never imports Textual, the TUI or the trainer."""

from slmtui.engine.device import DEVICE_CHOICES, pick_device
from slmtui.engine.errors import SlmError
from slmtui.engine.evaluate import EvalResult, evaluate_ids, evaluate_texts, token_byte_lengths
from slmtui.engine.generate import Alternative, Decoder, Generator, TokenEvent
from slmtui.engine.model import GPT, PRESETS, GPTConfig, KVCache, preset
from slmtui.engine.modeldir import (
    LoadedModel,
    ModelInfo,
    list_models,
    load_model_dir,
    read_model_info,
    resolve_model,
    save_model_dir,
)
from slmtui.engine.sampling import filter_logits, sample_next
from slmtui.engine.tokenizer import ENDOFTEXT, Tokenizer, TokenizerSpec

__all__ = [
    "DEVICE_CHOICES",
    "ENDOFTEXT",
    "GPT",
    "PRESETS",
    "Alternative",
    "Decoder",
    "EvalResult",
    "GPTConfig",
    "Generator",
    "KVCache",
    "LoadedModel",
    "ModelInfo",
    "SlmError",
    "TokenEvent",
    "Tokenizer",
    "TokenizerSpec",
    "evaluate_ids",
    "evaluate_texts",
    "filter_logits",
    "list_models",
    "load_model_dir",
    "pick_device",
    "preset",
    "read_model_info",
    "resolve_model",
    "sample_next",
    "save_model_dir",
    "token_byte_lengths",
]

"""Where slmtui keeps its files: the one module that knows.

platformdirs gives the user data, config and cache folders; ``SLMTUI_HOME`` moves all three
under one folder (tests set it so they never touch a real home).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

from slmtui.core.errors import SlmError

APP_NAME = "slmtui"
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_MODELS_DIR = ASSETS_DIR / "models"
BUNDLED_CORPUS_DIR = ASSETS_DIR / "corpus"
GPT2_RANKS_FILE = ASSETS_DIR / "tokenizers" / "r50k_base.tiktoken"


def _home() -> Path | None:
    home = os.environ.get("SLMTUI_HOME")
    if not home:
        return None
    path = Path(home).expanduser()
    if path.exists() and not path.is_dir():
        raise SlmError(f"SLMTUI_HOME={home} is a file; it must name a folder (or be unset)")
    return path


def _folder(path: Path) -> Path:
    """``path``, which must be a folder if it exists: a file there is named, not a NotADirectoryError later."""
    if path.exists() and not path.is_dir():
        raise SlmError(f"{path} is a file; slmtui keeps a folder there (move the file away)")
    return path


def data_dir() -> Path:
    """models/ and stories.db live here."""
    home = _home()
    return _folder(home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME)))


def config_dir() -> Path:
    """config.toml lives here."""
    home = _home()
    return _folder(home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME)))


def cache_dir() -> Path:
    """Tokenised corpora live here; deleting it only costs re-tokenising."""
    home = _home()
    return _folder(home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME)))


def models_dir() -> Path:
    return data_dir() / "models"


MODEL_NAME_RE = re.compile(r"[\w.-]+")
"""A model's name is its folder's name in models_dir(): letters, digits, '.', '-' and '_', not starting with '.'."""


def is_model_name(name: str) -> bool:
    """Whether ``name`` can name a model folder (hidden names are temporary folders of ours)."""
    return bool(MODEL_NAME_RE.fullmatch(name)) and not name.startswith(".")


def stories_db() -> Path:
    return data_dir() / "stories.db"


def config_file() -> Path:
    return config_dir() / "config.toml"


def user_files() -> dict[str, Path]:
    """What slmtui keeps of the user's, by what a message should call it.

    Nothing may ever be written over one of these, or over a folder that holds one: a model folder
    swapped in at the data folder would delete stories.db and every model with it.
    """
    return {
        "slmtui's data folder": data_dir(),
        "the models folder": models_dir(),
        "stories.db": stories_db(),
        "slmtui's config folder": config_dir(),
        "config.toml": config_file(),
        "slmtui's cache folder": cache_dir(),
    }

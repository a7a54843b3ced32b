"""The shared ``.env``: where it is, what it says, and how to change it without breaking it.

Pure Python on top of python-dotenv; nothing here imports Ray, Textual or the rest of the panel.
"""

from openrag_tui.config.envfile import (
    DEFAULT_ENV_PATHS,
    EnvFile,
    EnvFileChanged,
    EnvFileError,
    EnvLocation,
    locate_env,
)
from openrag_tui.config.secrets import MASK, is_secret, mask_value, redact
from openrag_tui.config.settings import (
    FIELDS,
    EnvEditRefused,
    FieldInfo,
    Problem,
    Settings,
    Severity,
    edit_problems,
    near_keys,
    set_env_values,
)

__all__ = [
    "DEFAULT_ENV_PATHS",
    "FIELDS",
    "MASK",
    "EnvEditRefused",
    "EnvFile",
    "EnvFileChanged",
    "EnvFileError",
    "EnvLocation",
    "FieldInfo",
    "Problem",
    "Settings",
    "Severity",
    "edit_problems",
    "is_secret",
    "locate_env",
    "mask_value",
    "near_keys",
    "redact",
    "set_env_values",
]

"""The panel's key table: one list drives key handling, the footer, `?` help and the palette.

Every binding has an id, so an operator can rebind it in a small TOML file (tmux clashes are
the most common complaint about operator TUIs):

    # ~/.config/openrag-tui/keymap.toml
    [keys]
    refresh = "f5"
    pause = "space"
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding

from openrag_tui.config.locations import config_dir

#: actions that change something: pool sizes, the .env, the cluster, batches (gone in --read-only)
CHANGING_ACTIONS: set[str] = set()
#: binding id -> (its default keys, what it does), for the changing ones
CHANGING_KEYS: dict[str, tuple[str, str]] = {}


def key(
    binding_id: str,
    keys: str,
    action: str,
    description: str,
    *,
    changes: bool = False,
    show: bool = True,
    group: str | None = None,
) -> Binding:
    """A Binding with an id (for the keymap); `changes` marks it hidden in --read-only.

    Bindings sharing a `group` show as one entry in the footer (`U D cluster`), which keeps
    every action visible at 80 columns; `?` still lists each one.
    """
    if changes:
        CHANGING_ACTIONS.add(action.removeprefix("app.").split("(")[0])
        CHANGING_KEYS[binding_id] = (keys, description)
    footer_group = Binding.Group(group) if group else None
    return Binding(keys, action, description, show=show, id=binding_id, group=footer_group)


def refused_key(
    pressed: str,
    active: Mapping[str, object],
    ids: Iterable[str | None],
    keymap: Mapping[str, str],
) -> str | None:
    """What a key would have done on a screen with binding `ids` had the panel not been
    read-only (None: not a changing key there, or one the screen serves). `keymap` is the
    operator's rebinding by id."""
    if pressed in active:
        return None
    for binding_id in ids:
        if binding_id not in CHANGING_KEYS:
            continue
        keys, description = CHANGING_KEYS[binding_id]
        bound = keymap.get(binding_id, keys)
        if pressed in {k.strip() for k in bound.split(",")}:
            return description
    return None


def keymap_path() -> Path:
    return config_dir() / "keymap.toml"


@dataclass(frozen=True)
class Keymap:
    """Binding id → key(s), and the problems found reading the file (shown, never fatal)."""

    keys: dict[str, str]
    problems: tuple[str, ...] = ()


def load_keymap(path: Path | None = None) -> Keymap:
    """Read the keymap file; a missing file is an empty keymap, a broken one says why."""
    path = keymap_path() if path is None else path
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Keymap({})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return Keymap({}, (f"{path}: {error}; default keys are used",))
    table = data.get("keys", {})
    if not isinstance(table, dict):
        return Keymap({}, (f'{path}: [keys] must be a table of id = "key"',))
    keys = {str(k): v for k, v in table.items() if isinstance(v, str) and v.strip()}
    bad = sorted(str(k) for k, v in table.items() if not (isinstance(v, str) and v.strip()))
    problems = tuple(f"{path}: {name} must be a key name in quotes" for name in bad)
    return Keymap(keys, problems)

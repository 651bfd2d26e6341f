"""The user's settings: a typed model, saved as JSON in the config folder with atomic writes.

No Qt here, so the CLI and tests read the same settings as the window. Unknown keys are kept (a newer
version may have written them) and a value of the wrong type or range falls back to its default with a
note in `problems`, so that one bad edit of the file never stops the program from starting.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from scubasteve.core.atomic import atomic_write_json
from scubasteve.core.errors import InputError
from scubasteve.core.paths import config_dir

SETTINGS_FILENAME = "settings.json"
DEVICES = ("auto", "cpu", "cuda", "mps")
#: The engines the window can use: the registry's (`inference.engines.ENGINE_NAMES`) without the
#: benchmark baselines; a test keeps the two in step.
ENGINES = ("ensemble", "classic", "isnet", "deepmask", "sam2")
PIXELLIB_SPEEDS = ("1024", "512", "384", "256")


@dataclass
class Settings:
    """Everything the user can change in the settings dialog.

    `shortcuts` maps an action id (see the GUI's action table) to a key sequence such as ``"Ctrl+S"``;
    only changed shortcuts are stored. `output_folder` empty means LabelMe JSON beside the images.
    `polygon_tolerance` is the simplification tolerance in pixels used when a mask becomes polygons;
    `min_island_area`: parts and holes of an accepted mask smaller than this (square pixels) are
    dropped (filled), so specks do not become shapes of their own. `instance_colors`: each object
    its own colour instead of one per label. `recent_folders`: most recent first (the start page).
    `deepmask_model` names the learned model the engines use (a DeepMask model, or another kind's:
    each engine takes a model of its own kind only); empty means the default installed model of
    each kind (see the weights manager).
    """

    device: str = "auto"
    engine: str = "ensemble"
    deepmask_model: str = ""
    polygon_tolerance: float = 1.0
    min_island_area: float = 10.0
    instance_colors: bool = False
    output_folder: str = ""
    shortcuts: dict[str, str] = field(default_factory=dict)
    proposals: int = 10
    pixellib_model: str = "mask_rcnn_coco"
    pixellib_speed: str = "1024"
    pixellib_min_score: float | None = None  # None: PixelLib's threshold for the input size
    recent_labels: list[str] = field(default_factory=list)
    last_folder: str = ""
    recent_folders: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**extra, **data}


def _check(name: str, value: Any, default: Any) -> Any:
    """`value` if it is valid for setting `name`, else raises ValueError saying why."""
    if name == "device":
        if value not in DEVICES:
            raise ValueError(f"must be one of {', '.join(DEVICES)}")
    elif name == "engine":
        if value not in ENGINES:
            raise ValueError(f"must be one of {', '.join(ENGINES)}")
    elif name == "pixellib_speed":
        value = str(value)
        if value not in PIXELLIB_SPEEDS:
            raise ValueError(f"must be one of {', '.join(PIXELLIB_SPEEDS)}")
    elif name == "pixellib_min_score" and value is None:
        pass
    elif name in ("polygon_tolerance", "pixellib_min_score", "min_island_area"):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ValueError("must be a number")
        value = float(value)
        if name == "polygon_tolerance" and not 0.0 <= value <= 20.0:
            raise ValueError("must be between 0 and 20 pixels")
        if name == "pixellib_min_score" and not 0.0 <= value <= 1.0:
            raise ValueError("must be between 0 and 1")
        if name == "min_island_area" and not 0.0 <= value <= 10000.0:
            raise ValueError("must be between 0 and 10000 square pixels")
    elif name == "proposals":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
            raise ValueError("must be a whole number from 1 to 10")
    elif name == "shortcuts":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError("must map action names to key sequences (text)")
        value = dict(value)
    elif name == "instance_colors":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
    elif name in ("recent_labels", "recent_folders"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of text")
        value = list(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ValueError("must be text")
    return value


def settings_from_dict(data: Any, problems: list[str] | None = None) -> Settings:
    """Settings from parsed JSON; invalid values keep their default and are noted in `problems`."""
    settings = Settings()
    if not isinstance(data, dict):
        if problems is not None:
            problems.append("the settings file does not hold a JSON object; using defaults")
        return settings
    known = {f.name for f in fields(Settings)} - {"extra"}
    for key, value in data.items():
        if key not in known:
            settings.extra[key] = value
            continue
        default = getattr(settings, key)
        try:
            setattr(settings, key, _check(key, value, default))
        except ValueError as exc:
            if problems is not None:
                problems.append(f"setting {key!r} = {value!r} {exc}; using {default!r}")
    return settings


def settings_path(folder: Path | None = None) -> Path:
    return (folder or config_dir()) / SETTINGS_FILENAME


def load_settings(path: Path | None = None, problems: list[str] | None = None) -> Settings:
    """The saved settings, or defaults when there is no file yet.

    A file that is not valid JSON is reported in `problems` (and left alone) rather than raised: the
    window must open even when someone broke the file by hand.
    """
    path = path or settings_path()
    if not path.is_file():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        if problems is not None:
            problems.append(f"{InputError(f'cannot read settings ({exc})', path)}; using defaults")
        return Settings()
    return settings_from_dict(data, problems)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (the old file stays whole if the write fails)."""
    path = path or settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot save settings: {exc.strerror or exc}", path) from exc
    try:
        atomic_write_json(path, settings.to_dict())
    except InputError as exc:
        raise InputError(f"cannot save settings: {exc.problem}", path) from exc
    return path

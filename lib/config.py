"""Run configuration: the profile files in `configs/` (smoke, quick, paper, and `recommended` derived from
quick), checked against one schema.

The three profiles have the same keys; only values differ. The schema is what they hold together: every key
of a config must exist in the profiles, every profile key must be set, and a value must have a type that some
profile gives it (an int is accepted where a float is, null only where a profile has null). A config that
breaks this is refused with the dotted key named, and so is an input size the encoders cannot halve five times
(`data.input_size`, a multiple of 32). Mappings whose keys are model names (`ladder.epochs`) are free-form.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .paths import CONFIG_DIR

PROFILES = ("smoke", "quick", "paper")  # each holds every key
DERIVED_PROFILES = ("recommended",)  # one of PROFILES with some settings changed
INPUT_MULTIPLE = 32  # the encoders halve the input five times
FREE_FORM = {"ladder.epochs"}  # keyed by model name
# Values a type cannot check: the augmentations' probabilities per tile, and a zoom limit (a factor in or out)
PROBABILITIES = ("elastic_p", "stain_augmentation", "scale_augmentation")  # of `train`


class ConfigError(ValueError):
    """A profile file or a parameter is missing or malformed."""


def _read(path: Path) -> dict[str, Any]:
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(cfg, dict) or "profile" not in cfg:
        raise ConfigError(f"config file {path} must be a mapping with a 'profile' key")
    return cfg


def _types(tree: dict[str, Any], prefix: str = "") -> dict[str, set[type]]:
    types: dict[str, set[type]] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        types.setdefault(name, set()).add(type(value))
        if isinstance(value, dict) and name not in FREE_FORM:
            for inner, found in _types(value, f"{name}.").items():
                types.setdefault(inner, set()).update(found)
    return types


@lru_cache(maxsize=1)
def schema() -> dict[str, frozenset[type]]:
    """Every dotted key of the profiles and the value types they use for it."""
    merged: dict[str, set[type]] = {}
    for name in PROFILES:
        for key, found in _types(_read(CONFIG_DIR / f"{name}.yaml")).items():
            merged.setdefault(key, set()).update(found)
    return {key: frozenset(found | ({int} if float in found else set())) for key, found in merged.items()}


def validate(cfg: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """`cfg` itself when it fits the schema; else ConfigError naming the first wrong key."""
    expected, found = schema(), _types(cfg)
    for key in sorted(found.keys() - expected.keys()):
        if not any(key.startswith(f"{free}.") for free in FREE_FORM):
            raise ConfigError(f"{source}: unknown key {key!r}")
    for key in sorted(expected.keys() - found.keys()):
        if not any(key.startswith(f"{free}.") for free in FREE_FORM):
            raise ConfigError(f"{source}: missing key {key!r}")
    for key in sorted(found.keys() & expected.keys()):
        wrong = found[key] - expected[key]
        if wrong:
            allowed = " or ".join(sorted("null" if t is type(None) else t.__name__ for t in expected[key]))
            shown = next(iter(wrong))
            raise ConfigError(f"{source}: {key} must be {allowed}, not "
                              f"{'null' if shown is type(None) else shown.__name__}")
    size = cfg.get("data", {}).get("input_size")
    if isinstance(size, int) and size % INPUT_MULTIPLE:
        raise ConfigError(f"{source}: data.input_size must be a multiple of {INPUT_MULTIPLE}, not {size}")
    scale = cfg.get("model", {}).get("encoder_scale", 1.0)
    if not 0 < scale <= 1:
        raise ConfigError(f"{source}: model.encoder_scale is the share of the input the encoder sees, in (0, 1], "
                          f"not {scale}")
    if cfg.get("model", {}).get("encoder_shrink") == "unshuffle" and abs(1 / scale - round(1 / scale)) > 1e-9:
        raise ConfigError(f"{source}: model.encoder_shrink unshuffle folds r x r pixel blocks, so model.encoder_scale "
                          f"must be 1 / r for a whole number r, not {scale}")
    if isinstance(size, int) and (size * scale) % INPUT_MULTIPLE:  # the encoder sees input_size x encoder_scale
        raise ConfigError(f"{source}: data.input_size x model.encoder_scale must be a multiple of {INPUT_MULTIPLE}, "
                          f"not {size} x {scale} = {size * scale:g}")
    train = cfg.get("train", {})
    for key in PROBABILITIES:
        if key in train and not 0 <= train[key] <= 1:
            raise ConfigError(f"{source}: train.{key} is a probability per tile, from 0 to 1, not {train[key]}")
    if train.get("zoom_limit", 1) < 1:
        raise ConfigError(f"{source}: train.zoom_limit is the largest zoom in or out, at least 1, not {train['zoom_limit']}")
    return cfg


def load_config(profile_or_path: str | Path) -> dict[str, Any]:
    """Read a profile by name (`quick`) or a YAML file by path, checked against the schema. A derived profile
    (`recommended`) is one of `PROFILES` with settings changed: `extends: quick` and `changes: {section.key: value}`."""
    path = Path(profile_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / f"{profile_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (profiles: {', '.join(PROFILES + DERIVED_PROFILES)})")
    cfg = _read(path)
    if "extends" in cfg:
        cfg = _derived(cfg, path)
    return validate(cfg, str(path))


def _derived(spec: dict[str, Any], path: Path) -> dict[str, Any]:
    """The config a derived profile file describes: its base profile with its changes, under its own name."""
    if set(spec) != {"profile", "extends", "changes"} or not isinstance(spec["changes"], dict):
        raise ConfigError(f"config file {path}: a derived profile holds exactly profile, extends and changes "
                          "(a mapping of section.key: value)")
    if spec["extends"] not in PROFILES:
        raise ConfigError(f"config file {path}: extends {spec['extends']!r}, not one of {', '.join(PROFILES)}")
    base = _read(CONFIG_DIR / f"{spec['extends']}.yaml")
    try:
        cfg = apply_changes(base, spec["changes"])
    except ConfigError as error:
        raise ConfigError(f"config file {path}: {error}") from error
    cfg["profile"] = spec["profile"]
    return cfg


def resolve(profile: str, **sections: Any) -> dict[str, Any]:
    """The config a notebook runs with: papermill-injected sections (`-f configs/X.yaml`) win;
    sections left at None are read from the profile file, so a notebook also runs by hand."""
    cfg = load_config(profile)
    for name, value in sections.items():
        if value is not None:
            if name not in cfg:
                raise ConfigError(f"unknown config section {name!r} for profile {profile!r}")
            cfg[name] = copy.deepcopy(value)
    return validate(cfg, f"profile {profile!r} with the notebook's parameters")


def apply_changes(cfg: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of `cfg` with `section.key` settings replaced (the command lines' `--set`), checked against the
    schema."""
    cfg = copy.deepcopy(cfg)
    for dotted, value in changes.items():
        section, _, key = dotted.partition(".")
        if section not in cfg or not isinstance(cfg[section], dict) or not key:
            raise ConfigError(f"{dotted}: not a setting (name one as section.key, e.g. train.epochs)")
        cfg[section][key] = value
    return validate(cfg, f"the config with {', '.join(changes)} set" if changes else "the config")


@lru_cache(maxsize=8)
def _profile(name: str) -> dict[str, Any]:
    return load_config(name)


def profile_changes(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `section.key` settings of `cfg` whose value is not its profile file's (what `--set` changed, and the
    settings a profile file has changed since a run recorded them), by dotted key in the config's order."""
    profile = _profile(cfg["profile"])
    return {f"{section}.{key}": value for section, values in cfg.items() if isinstance(values, dict)
            for key, value in values.items() if key not in profile.get(section, {}) or value != profile[section][key]}


def setting_texts(changes: dict[str, Any]) -> list[str]:
    """`changes` as the `section.key=value` texts of the command lines' `--set` (values written as `parse_setting`
    reads them back)."""
    return [f"{dotted}={_yaml_value(value)}" for dotted, value in changes.items()]


def _yaml_value(value: Any) -> str:
    """One value in YAML's flow style on one line (dumped inside a list: a scalar alone gets a document end)."""
    return yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()[1:-1]


def parse_setting(text: str) -> tuple[str, Any]:
    """`section.key=value` (the value read as YAML: 8, 3e-4, true, null, [a, b]) as (dotted key, value)."""
    key, separator, value = text.partition("=")
    if not separator:
        raise ConfigError(f"--set {text}: expected section.key=value")
    return key.strip(), yaml.safe_load(value)


def with_budget(cfg: dict[str, Any], section: str) -> dict[str, Any]:
    """A copy of `cfg` training on `section`'s budget (its `max_train_tiles` and `epochs`; null keeps train's):
    the experiments of notebooks 05 and 07 use one budget for all their runs."""
    cfg = copy.deepcopy(cfg)
    for key in ("max_train_tiles", "epochs"):
        if cfg[section][key] is not None:
            cfg["train"][key] = cfg[section][key]
    return cfg

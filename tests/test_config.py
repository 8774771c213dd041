"""Profiles: same keys everywhere, only values differ; notebooks' injected sections win."""
import pytest

from lib import config


def _keys(tree, prefix=""):
    return {prefix + k for k in tree} | {key for k, v in tree.items() if isinstance(v, dict)
                                         for key in _keys(v, f"{prefix}{k}.")}


def test_profiles_share_one_schema():
    schemas = {name: _keys(config.load_config(name)) for name in config.PROFILES}
    assert schemas["smoke"] == schemas["quick"] == schemas["paper"]
    for name in config.PROFILES:
        assert config.load_config(name)["profile"] == name


def test_resolve_prefers_injected_sections():
    data = dict(config.load_config("quick")["data"], input_size=99)
    cfg = config.resolve("quick", data=data, seed=None)
    assert cfg["data"]["input_size"] == 99 and cfg["seed"] == config.load_config("quick")["seed"]
    with pytest.raises(config.ConfigError, match="unknown config section 'nonsense'"):
        config.resolve("quick", nonsense={})


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(config.ConfigError, match="configs/fast.yaml does not exist"):
        config.load_config("fast")


def test_dataset_names():
    assert config.dataset_name("") == config.dataset_name(None) == "synthetic"
    assert config.dataset_name("/x/ucsb_breast_cancer_cells/") == "ucsb_breast_cancer_cells"


def test_profiles_name_known_models():
    from lib.models import MODEL_NAMES
    for name in config.PROFILES:
        cfg = config.load_config(name)
        assert set(cfg["runs"]["models"]) <= set(MODEL_NAMES)
        assert set(cfg["ladder"]["epochs"]) <= set(MODEL_NAMES)


def test_an_experiment_budget_overrides_training_only_where_set():
    cfg = config.load_config("quick")
    cfg["stability"].update(max_train_tiles=150, epochs=None)
    budget = config.with_budget(cfg, "stability")
    assert budget["train"]["max_train_tiles"] == 150
    assert budget["train"]["epochs"] == cfg["train"]["epochs"]       # null keeps train's
    cfg["stability"]["epochs"] = cfg["train"]["epochs"] + 4
    assert config.with_budget(cfg, "stability")["train"]["epochs"] == cfg["train"]["epochs"] + 4
    assert cfg["train"]["max_train_tiles"] is None                    # the profile itself is untouched

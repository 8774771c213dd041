"""Profiles: same keys everywhere, only values differ; notebooks' injected sections win."""
import re

import pytest

from lib import config, paths


def _keys(tree, prefix=""):
    return {prefix + k for k in tree} | {key for k, v in tree.items() if isinstance(v, dict)
                                         for key in _keys(v, f"{prefix}{k}.")}


def test_profiles_share_one_schema():
    schemas = {name: _keys(config.load_config(name)) for name in config.PROFILES}
    assert schemas["smoke"] == schemas["quick"] == schemas["paper"]
    for name in config.PROFILES:
        assert config.load_config(name)["profile"] == name


def test_resolve_prefers_injected_sections():
    data = dict(config.load_config("quick")["data"], input_size=96)
    cfg = config.resolve("quick", data=data, seed=None)
    assert cfg["data"]["input_size"] == 96 and cfg["seed"] == config.load_config("quick")["seed"]
    with pytest.raises(config.ConfigError, match="unknown config section 'nonsense'"):
        config.resolve("quick", nonsense={})


def test_an_input_size_the_encoders_cannot_halve_five_times_is_refused():
    quick = config.load_config("quick")
    with pytest.raises(config.ConfigError, match="data.input_size must be a multiple of 32, not 100"):
        config.apply_changes(quick, {"data.input_size": 100})
    assert config.apply_changes(quick, {"data.input_size": 256})["data"]["input_size"] == 256


@pytest.mark.parametrize("change, message", [
    ({"train.scale_augmentation": 1.5}, "train.scale_augmentation is a probability per tile, from 0 to 1, not 1.5"),
    ({"train.stain_augmentation": -0.1}, "train.stain_augmentation is a probability per tile, from 0 to 1, not -0.1"),
    ({"train.zoom_limit": 0.7}, "train.zoom_limit is the largest zoom in or out, at least 1, not 0.7")])
def test_an_augmentation_setting_out_of_its_range_is_refused(change, message):
    quick = config.load_config("quick")
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.apply_changes(quick, change)
    assert config.apply_changes(quick, {"train.scale_augmentation": 0.5, "train.zoom_limit": 1.0})["train"]["zoom_limit"] == 1


@pytest.mark.parametrize("change, message", [
    ({"model.encoder_scale": 1.5}, "model.encoder_scale is the share of the input the encoder sees, in (0, 1], not 1.5"),
    ({"model.encoder_scale": 0.0}, "model.encoder_scale is the share of the input the encoder sees, in (0, 1], not 0.0"),
    ({"model.encoder_scale": 0.3},
     "data.input_size x model.encoder_scale must be a multiple of 32, not 128 x 0.3 = 38.4")])
def test_an_encoder_scale_the_encoder_cannot_take_is_refused(change, message):
    quick = config.load_config("quick")
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.apply_changes(quick, change)
    halved = config.apply_changes(quick, {"data.input_size": 256, "model.encoder_scale": 0.5})
    assert halved["model"]["encoder_scale"] == 0.5 and halved["data"]["input_size"] == 256


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(config.ConfigError, match="configs/fast.yaml does not exist"):
        config.load_config("fast")


def test_dataset_names_and_relative_data_folders(tmp_path, monkeypatch):
    assert paths.dataset_name("") == paths.dataset_name(None) == "synthetic"
    assert paths.dataset_name("/x/ucsb_breast_cancer_cells/") == "ucsb_breast_cancer_cells"
    monkeypatch.chdir(tmp_path)                               # e.g. notebooks/: `configs` is not here
    assert paths.data_folder("configs") == paths.CONFIG_DIR   # so it is the repository's
    (tmp_path / "configs").mkdir()
    assert paths.data_folder("configs") == tmp_path / "configs"  # the working directory's wins when it exists


def test_a_config_with_a_missing_unknown_or_mistyped_key_is_refused_with_the_key_named(tmp_path):
    cfg = config.load_config("quick")
    del cfg["train"]["epochs"]
    with pytest.raises(config.ConfigError, match="missing key 'train.epochs'"):
        config.validate(cfg)
    cfg = config.load_config("quick")
    cfg["train"]["epoch"] = 3
    with pytest.raises(config.ConfigError, match="unknown key 'train.epoch'"):
        config.validate(cfg)
    cfg = config.load_config("quick")
    cfg["train"]["epochs"] = "eight"
    with pytest.raises(config.ConfigError, match="train.epochs must be int, not str"):
        config.validate(cfg)
    cfg = config.load_config("quick")
    cfg["train"]["lr_max"] = 1                                # an int where a float is expected is fine
    cfg["ladder"]["epochs"] = {"unet": 2}                     # keyed by model: free-form
    assert config.validate(cfg) is cfg
    broken = tmp_path / "broken.yaml"
    broken.write_text("profile: quick\ntrain: [1, 2\n")
    with pytest.raises(config.ConfigError, match="broken.yaml is not valid YAML"):
        config.load_config(broken)
    partial = tmp_path / "partial.yaml"
    partial.write_text("profile: quick\nseed: 0\n")
    with pytest.raises(config.ConfigError, match="partial.yaml: missing key 'ablations'"):
        config.load_config(partial)


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


def test_the_watershed_settings_are_the_ones_chosen_on_ucsb_validation_tiles():
    """The profiles' `instances` distances, areas and core share come from benchmarks/instances.py, never typed in."""
    import pandas as pd

    chosen = pd.read_csv(paths.REPO_ROOT / "figures" / "benchmarks"
                         / "instances-ucsb_breast_cancer_cells-quick-enhanced_region.csv", index_col=0)
    row = chosen.loc["enhanced_region, chosen on validation"]
    for profile in config.PROFILES:
        settings = config.load_config(profile)["instances"]
        assert (settings["min_distance_source_px"], settings["min_area_source_px"], settings["core_share"]) == (
            row["min distance (source px)"], row["min area (source px)"], row["core share"])


def test_a_derived_profile_is_its_base_with_its_changes_under_its_own_name(tmp_path):
    derived, quick = config.load_config("recommended"), config.load_config("quick")
    spec = config._read(paths.CONFIG_DIR / "recommended.yaml")
    assert derived["profile"] == "recommended" and spec["extends"] == "quick"
    assert derived == dict(config.apply_changes(quick, spec["changes"]), profile="recommended")
    assert paths.setting_name(derived) == "recommended"  # its own settings are not a setting axis's change
    (tmp_path / "bad.yaml").write_text("profile: bad\nextends: quick\nchanges: {train.epoch: 3}\n")
    with pytest.raises(config.ConfigError, match="bad.yaml: .*unknown key 'train.epoch'"):
        config.load_config(tmp_path / "bad.yaml")
    (tmp_path / "chain.yaml").write_text("profile: chain\nextends: recommended\nchanges: {}\n")
    with pytest.raises(config.ConfigError, match="chain.yaml: extends 'recommended', not one of smoke, quick, paper"):
        config.load_config(tmp_path / "chain.yaml")


def test_the_settings_changed_from_a_profile_are_found_and_written_back_as_set_flags():
    changes = {"data.input_size": 256, "train.stain_augmentation": 0.5, "train.loss": "dice",
               "ladder.epochs": {"fgfeu_net": 2}, "budget.points": [[128, 8]], "train.max_train_tiles": 40}
    cfg = config.apply_changes(config.load_config("quick"), changes)
    assert config.profile_changes(config.load_config("quick")) == {}
    assert config.profile_changes(cfg) == changes
    texts = config.setting_texts(config.profile_changes(cfg))
    assert texts[0] == "data.input_size=256" and "ladder.epochs={fgfeu_net: 2}" in texts
    read_back = dict(config.parse_setting(text) for text in texts)
    assert config.apply_changes(config.load_config("quick"), read_back) == cfg

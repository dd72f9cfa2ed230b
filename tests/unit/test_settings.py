"""The settings registry: flag over environment over default; secrets stay hidden."""

from __future__ import annotations

import pytest

from champion.settings import BY_NAME, SETTINGS, Config


def test_defaults_apply_without_flags_or_environment():
    config = Config.load({}, environ={})
    for setting in SETTINGS:
        assert getattr(config, setting.name) == setting.default


def test_environment_overrides_default_and_flag_overrides_environment():
    env = {"CHAMPION_PORT": "9001", "CHAMPION_HOME": "/tmp/x", "CHAMPION_REQUIRE_AUTH": "yes"}
    config = Config.load({}, environ=env)
    assert (config.port, config.data_dir, config.require_auth) == (9001, "/tmp/x", True)
    config = Config.load({"port": 9002}, environ=env)
    assert config.port == 9002


def test_a_bad_environment_value_names_the_variable():
    with pytest.raises(ValueError, match="CHAMPION_TIMEOUT"):
        Config.load({}, environ={"CHAMPION_TIMEOUT": "soon"})


def test_secrets_are_masked():
    config = Config.load({"token": "s3cret"}, environ={})
    assert config.public()["token"] == "***"
    assert "s3cret" not in repr(config)
    assert BY_NAME["token"].secret


def test_every_setting_has_help_and_a_champion_variable():
    for setting in SETTINGS:
        assert setting.help.strip()
        assert setting.env_var.startswith("CHAMPION_")


def test_a_setting_outside_its_bounds_is_refused_naming_its_flag():
    from champion.settings import Config

    for name, bad in (("rate_limit", -1.0), ("anonymous_rate_limit", float("nan")),
                      ("max_answer_bytes", 10), ("worker_memory_mb", -5)):
        with pytest.raises(ValueError, match="--" + name.replace("_", "-")):
            Config.load({name: bad}, environ={})
    with pytest.raises(ValueError, match="CHAMPION_RATE_LIMIT"):
        Config.load(environ={"CHAMPION_RATE_LIMIT": "-3"})
    assert Config.load({"rate_limit": 2.5}, environ={}).rate_limit == 2.5

"""CORS origins and auth settings from the configuration and the environment."""

from pathlib import Path

import pytest

from gateway.northbound.http.cors import normalize_origin
from gateway.settings import load_config
from plant.errors import ConfigError

CONFIG = Path(__file__).parents[2] / "config" / "gateway.toml"


def test_cors_origins_are_empty_by_default():
    assert load_config(CONFIG, environ={}).settings.http.cors_origins == []


def test_cors_origins_come_from_the_environment_as_a_json_list():
    env = {"REFINERYIQ_HTTP__CORS_ORIGINS": '["http://localhost:3000", "https://hmi.plant"]'}
    settings = load_config(CONFIG, environ=env).settings
    assert settings.http.cors_origins == ["http://localhost:3000", "https://hmi.plant"]


def test_wildcard_origin_is_a_config_error():
    with pytest.raises(ConfigError, match=r"http.cors_origins"):
        load_config(CONFIG, environ={"REFINERYIQ_HTTP__CORS_ORIGINS": '["*"]'})


def test_signing_key_can_come_from_a_secret_file(tmp_path):
    secret = tmp_path / "jwt-key"
    secret.write_text("a" * 64 + "\n")
    settings = load_config(CONFIG, environ={"REFINERYIQ_AUTH__SIGNING_KEY_FILE": str(secret)}).settings
    assert settings.auth.signing_key.get_secret_value() == "a" * 64


def test_token_lifetime_defaults_to_one_shift():
    assert load_config(CONFIG, environ={}).settings.auth.token_lifetime_s == 8 * 3600


@pytest.mark.parametrize(("origin", "normalized"), [
    ("http://localhost:3000", "http://localhost:3000"),
    ("http://LocalHost:3000/", "http://localhost:3000"),
])
def test_origins_compare_case_insensitively_without_trailing_slash(origin, normalized):
    assert normalize_origin(origin) == normalized

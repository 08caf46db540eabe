"""Settings: environment names and defaults of the contract, flags win, bad values stop start-up by name."""

from __future__ import annotations

import pytest

from gateway.settings import BackendKind, LogFormat, SettingsError, from_env


def test_defaults_match_the_contract() -> None:
    settings = from_env({})
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", 8000, 9090)  # noqa: S104
    assert settings.metrics_prefix == "asr_gateway"
    assert settings.root_path == ""
    assert settings.backend is BackendKind.EMBEDDED
    assert settings.default_process_type == "full"
    assert settings.default_language == ""
    assert settings.chunk_seconds == 30
    assert (settings.max_chunked_seconds, settings.max_full_seconds) == (1800, 600)
    assert (settings.max_concurrent_chunked, settings.max_concurrent_full) == (25, 5)
    assert settings.queue_timeout_seconds == 10
    assert (settings.chunk_timeout_seconds, settings.full_timeout_seconds) == (30, 300)
    assert settings.max_upload_mb == 500
    assert settings.model_aliases == ("whisper-1",)
    assert settings.api_keys == ()
    assert (settings.log_level, settings.log_format) == ("INFO", LogFormat.JSON)


def test_environment_names() -> None:
    settings = from_env(
        {
            "PORT": "9001",
            "MODEL_ALIASES": "whisper-1, gpt-4o-transcribe",
            "API_KEYS": "a,b",
            "DEFAULT_PROCESS_TYPE": "chunked",
            "CHUNK_SECONDS": "20",
            "ROOT_PATH": "/internal/asr",
            "LOG_FORMAT": "text",
            "DEFAULT_LANGUAGE": "English",
        }
    )
    assert settings.port == 9001
    assert settings.model_aliases == ("whisper-1", "gpt-4o-transcribe")
    assert settings.api_keys == ("a", "b")
    assert settings.default_process_type == "chunked"
    assert settings.chunk_seconds == 20
    assert settings.root_path == "/internal/asr"
    assert settings.log_format is LogFormat.TEXT
    assert settings.default_language_code == "en"  # a name or a code, as requests may give it
    assert from_env({}).default_language_code is None  # detect


def test_flags_win_over_the_environment() -> None:
    assert from_env({"PORT": "9001"}, {"port": "9002"}).port == 9002


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"BACKEND": "whisperx"}, "BACKEND"),
        ({"CHUNK_SECONDS": "45"}, "CHUNK_SECONDS"),
        ({"CHUNK_SECONDS": "0.01"}, "CHUNK_SECONDS"),
        ({"CHUNK_SECONDS": "nan"}, "CHUNK_SECONDS"),
        ({"MAX_UPLOAD_MB": "inf"}, "MAX_UPLOAD_MB"),
        ({"QUEUE_TIMEOUT_SECONDS": "NaN"}, "QUEUE_TIMEOUT_SECONDS"),
        ({"MAX_CONCURRENT_FULL": "0"}, "MAX_CONCURRENT_FULL"),
        ({"KEEP_ALIVE_SECONDS": "0"}, "KEEP_ALIVE_SECONDS"),
        ({"DEFAULT_PROCESS_TYPE": "fast"}, "DEFAULT_PROCESS_TYPE"),
        ({"ROOT_PATH": "internal/"}, "ROOT_PATH"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"BACKEND": "vllm"}, "VLLM_MODEL"),
        ({"DEFAULT_LANGUAGE": "Klingon"}, "DEFAULT_LANGUAGE"),
        ({"PORT": "9000", "METRICS_PORT": "9000"}, "METRICS_PORT"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=f"^{named}:"):
        from_env(env)


@pytest.mark.parametrize(("name", "choices"), [("BACKEND", "embedded, vllm"), ("LOG_FORMAT", "json, text")])
def test_a_bad_choice_lists_the_good_ones(name: str, choices: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}: .*one of: {choices}"):
        from_env({name: "gpu"})


def test_docs_list_every_setting() -> None:
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("settings_table", root / "scripts" / "settings_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.table() in (root / "docs" / "settings.md").read_text(), "run: python scripts/settings_table.py"

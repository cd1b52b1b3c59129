"""Settings: defaults, the instance file, the environment, the generated secret key, and every
command reading them the same way."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailer import create_app
from mailer.config import SETTINGS, describe, setting

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def instance(tmp_path, monkeypatch) -> Path:
    """A fresh instance folder and an environment with no Mailer settings in it."""
    for name in list(os.environ):
        if name.startswith(("MAILER_", "MAIL_")):
            monkeypatch.delenv(name)
    folder = tmp_path / "instance"
    monkeypatch.setenv("MAILER_INSTANCE_PATH", str(folder))
    return folder


def clean_env(instance: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env["MAILER_INSTANCE_PATH"] = str(instance)
    env.update(extra)
    return env


def test_defaults_with_nothing_configured(instance):
    app = create_app()
    for s in SETTINGS:
        if s.default is not None:
            assert app.config[s.key] == s.default, s.key
    assert app.instance_path == str(instance)
    assert app.config["DATABASE_URL"] == f"sqlite:///{instance / 'mailer.sqlite'}"
    assert app.config["REDIS_URL"] is None and app.config["MAIL_SERVER"] is None
    assert app.config["MAIL_CATCHER"] is False
    assert app.config["SESSION_COOKIE_SECURE"] is False  # the default address is plain http


def test_secret_key_is_generated_once_into_the_instance_folder(instance):
    first = create_app().config["SECRET_KEY"]
    key_file = instance / "secret_key"
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert key_file.read_text() == first
    assert key_file.stat().st_mode & 0o777 == 0o600  # only its owner may read it
    assert create_app().config["SECRET_KEY"] == first  # the second run reuses it
    assert [p.name for p in instance.iterdir()] == ["secret_key"]  # nothing half-made left beside it


def test_secret_key_from_the_environment_is_not_written(instance, monkeypatch):
    monkeypatch.setenv("MAILER_SECRET_KEY", "from-the-environment")
    assert create_app().config["SECRET_KEY"] == "from-the-environment"
    assert not (instance / "secret_key").exists()


def test_an_empty_secret_key_file_is_refused(instance):
    instance.mkdir()
    (instance / "secret_key").write_text("")
    with pytest.raises(RuntimeError, match="secret_key is empty"):
        create_app()


@pytest.mark.slow
def test_processes_starting_together_share_one_secret_key(instance, tmp_path):
    """A web process and workers started at the same moment on a new instance agree on the key."""
    code = "from mailer import create_app; print(create_app().config['SECRET_KEY'])"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=clean_env(instance), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _out, err in results]
    keys = {out.strip() for out, _err in results}
    assert keys == {(instance / "secret_key").read_text()}
    assert len(keys.pop()) == 64


def test_environment_overrides_defaults_with_the_right_types(instance, monkeypatch):
    monkeypatch.setenv("MAILER_ORG_NAME", "Env Town CLP")
    monkeypatch.setenv("MAILER_PAGE_SIZE", "25")
    monkeypatch.setenv("MAILER_IMPORT_DEFAULT_BULLETINS", "false")
    monkeypatch.setenv("MAILER_DATABASE_URL", "sqlite:////tmp/elsewhere.sqlite")
    monkeypatch.setenv("MAILER_BASE_URL", "https://mailer.example.org")
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.org")
    monkeypatch.setenv("MAIL_PORT", "587")
    monkeypatch.setenv("MAIL_USE_TLS", "yes")
    config = create_app().config
    assert config["ORG_NAME"] == "Env Town CLP"
    assert config["PAGE_SIZE"] == 25
    assert config["IMPORT_DEFAULT_BULLETINS"] is False
    assert config["DATABASE_URL"] == "sqlite:////tmp/elsewhere.sqlite"
    assert config["MAIL_SERVER"] == "smtp.example.org" and config["MAIL_PORT"] == 587
    assert config["MAIL_USE_TLS"] is True and config["MAIL_USE_SSL"] is False
    assert config["SESSION_COOKIE_SECURE"] is True  # an https address gets secure cookies


def test_a_bad_number_names_its_variable(instance, monkeypatch):
    monkeypatch.setenv("MAIL_PORT", "twenty-five")
    with pytest.raises(ValueError, match="MAIL_PORT='twenty-five'"):
        create_app()


def test_instance_file_overrides_defaults_and_the_environment_beats_it(instance, monkeypatch):
    instance.mkdir()
    (instance / "mailer.cfg").write_text('ORG_NAME = "File Town CLP"\nPAGE_SIZE = 10\n'
                                         'MAIL_SERVER = "smtp.file.example"\nSENDER_NAME = "File Secretary"\n')
    config = create_app().config
    assert (config["ORG_NAME"], config["PAGE_SIZE"], config["MAIL_SERVER"]) == ("File Town CLP", 10,
                                                                                 "smtp.file.example")
    assert config["MAIL_DEFAULT_SENDER"] == ("File Secretary", "secretary@example.org")

    monkeypatch.setenv("MAILER_ORG_NAME", "Env Town CLP")
    monkeypatch.setenv("MAIL_SERVER", "smtp.env.example")
    config = create_app().config
    assert config["ORG_NAME"] == "Env Town CLP" and config["MAIL_SERVER"] == "smtp.env.example"
    assert config["PAGE_SIZE"] == 10  # what the environment does not set still comes from the file


def test_instance_file_may_use_the_environment_names(instance, monkeypatch):
    instance.mkdir()
    (instance / "mailer.cfg").write_text('MAILER_ORG_NAME = "File Town CLP"\nMAILER_PAGE_SIZE = 12\n'
                                         'MAIL_PORT = 2525\n')
    config = create_app().config
    assert config["ORG_NAME"] == "File Town CLP" and config["PAGE_SIZE"] == 12 and config["MAIL_PORT"] == 2525
    monkeypatch.setenv("MAILER_ORG_NAME", "Env Town CLP")
    assert create_app().config["ORG_NAME"] == "Env Town CLP"


def test_settings_table_is_consistent():
    envs = [s.env for s in SETTINGS]
    assert len(set(envs)) == len(envs) == len({s.key for s in SETTINGS})
    for s in SETTINGS:
        assert s.env in (f"MAILER_{s.key}", s.key) and s.env.startswith(("MAILER_", "MAIL_")), s
        assert s.help.strip(), s
        assert setting(s.key) is s
    assert [row["env"] for row in describe()] == envs


@pytest.mark.slow
def test_mailer_config_lists_every_setting(instance, tmp_path):
    result = subprocess.run([sys.executable, "-m", "mailer", "config"], env=clean_env(instance), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `([A-Z_]+)`", row).group(1) for row in rows] == [s.env for s in SETTINGS]


@pytest.mark.slow
def test_cli_commands_read_the_file_and_the_environment(instance, tmp_path):
    """`mailer` commands go through the same load_config: the instance file's database, then the
    environment's when both name one."""
    from_file, from_env = tmp_path / "from-file.sqlite", tmp_path / "from-env.sqlite"
    instance.mkdir()
    (instance / "mailer.cfg").write_text(f'DATABASE_URL = "sqlite:///{from_file}"\n')

    def mailer(*args: str, **env: str) -> str:
        result = subprocess.run([sys.executable, "-m", "mailer", *args], env=clean_env(instance, **env),
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "(empty)" in mailer("db", "current")
    mailer("db", "upgrade")
    assert from_file.exists() and not from_env.exists()
    assert "(head)" in mailer("db", "current")
    assert "(empty)" in mailer("db", "current", MAILER_DATABASE_URL=f"sqlite:///{from_env}")
    assert not (instance / "mailer.sqlite").exists()


def test_readme_documents_every_setting():
    """Every setting's environment variable is in the README (its configuration table comes from
    `mailer config`)."""
    readme = README.read_text()
    missing = [s.env for s in SETTINGS if s.env not in readme]
    assert missing == [], f"README.md does not mention: {', '.join(missing)}"

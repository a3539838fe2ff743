"""The service's token: given, from the environment, or generated once into a file only the user reads."""
import stat

from backend.server.settings import load_token, token_file


def test_a_token_is_generated_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.delenv("RSOV_TOKEN", raising=False)
    first = load_token(tmp_path)
    assert len(first) >= 32 and load_token(tmp_path) == first
    assert stat.S_IMODE(token_file(tmp_path).stat().st_mode) == 0o600
    token_file(tmp_path).chmod(0o644)  # restored from a backup with a looser mode
    assert load_token(tmp_path) == first and stat.S_IMODE(token_file(tmp_path).stat().st_mode) == 0o600


def test_a_given_token_wins_over_the_environment_and_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RSOV_TOKEN", "from-env")
    assert load_token(tmp_path, "given") == "given"
    assert load_token(tmp_path) == "from-env"
    assert not token_file(tmp_path).exists()

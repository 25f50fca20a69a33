"""Size-like encoder options are checked where the encoder is built, so every script reports a bad
one in one line (exit status 2) that names the encoder, the option and the value."""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import pretrain  # noqa: E402
import train  # noqa: E402

LIST = "must be a non-empty list of positive integers"
BAD_OPTIONS = {
    "negative width": ("mlp", "CartPole-v1", '{"hidden_sizes": [-4]}', f"the mlp encoder's hidden_sizes {LIST}, got [-4]"),
    "zero width": ("mlp", "CartPole-v1", '{"hidden_sizes": [64, 0]}', f"the mlp encoder's hidden_sizes {LIST}, got [64, 0]"),
    "text": ("mlp", "CartPole-v1", '{"hidden_sizes": "abc"}', f"the mlp encoder's hidden_sizes {LIST}, got 'abc'"),
    "fraction": ("mlp", "CartPole-v1", '{"hidden_sizes": [64.5]}', f"the mlp encoder's hidden_sizes {LIST}, got [64.5]"),
    "no layer": ("mlp", "CartPole-v1", '{"hidden_sizes": []}', f"the mlp encoder's hidden_sizes {LIST}, got []"),
    "a number, not a list": ("mlp", "CartPole-v1", '{"hidden_sizes": 64}', f"the mlp encoder's hidden_sizes {LIST}, got 64"),
    "impala channels": ("impala", "reprl/DistractorCartPole-v0", '{"channels": [16, 0]}',
                        f"the impala encoder's channels {LIST}, got [16, 0]"),
    "impala features": ("impala", "reprl/DistractorCartPole-v0", '{"features_dim": 0}',
                        "the impala encoder's features_dim must be a positive integer, got 0"),
    "nature features": ("nature", "reprl/DistractorCartPole-v0", '{"features_dim": -1}',
                        "the nature encoder's features_dim must be a positive integer, got -1"),
}


def refused(main, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_train_refuses_a_bad_size_in_one_line(case, tmp_path, capsys):
    encoder, env, options, message = BAD_OPTIONS[case]
    run_dir = tmp_path / "run"
    assert refused(train.main, ["--encoder", encoder, "--env", env, "--encoder-options", options, "--preset", "none",
                                "--steps", "64", "--run-dir", str(run_dir), "--no-progress"], capsys) == f"error: {message}"
    assert not run_dir.exists()


@pytest.mark.parametrize("case", ["negative width", "text", "nature features"])
def test_pretrain_refuses_a_bad_size_in_one_line(case, tmp_path, capsys):
    encoder, env, options, message = BAD_OPTIONS[case]
    out = tmp_path / "out"
    assert refused(pretrain.main, ["--method", "byol", "--encoder", encoder, "--env", env, "--encoder-options", options,
                                   "--frames", "64", "--batch-size", "32", "--out", str(out), "--no-progress"],
                   capsys) == f"error: {message}"
    assert not out.exists()


def test_the_process_exits_2_with_the_line_and_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPTS / "train.py"), "--encoder", "mlp", "--encoder-options",
                           '{"hidden_sizes": [-4]}', "--steps", "64", "--run-dir", str(tmp_path / "run"),
                           "--no-progress"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == f"error: the mlp encoder's hidden_sizes {LIST}, got [-4]\n"

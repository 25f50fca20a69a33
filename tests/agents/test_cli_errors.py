"""Every bad input gives one line on stderr, exit status 2, and leaves nothing behind."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train  # noqa: E402

TRAIN = Path(__file__).resolve().parents[2] / "scripts" / "train.py"

BAD_INPUTS = {
    "unknown agent": (["--agent", "nope"], "unknown agent 'nope'"),
    "unknown env": (["--env", "NoSuchEnv-v0"], "unknown environment id"),
    "misspelt env": (["--env", "Cartpole-v1"], "(did you mean CartPole-v1"),
    "env needing an extra": (["--env", "reprl-test/NeedsAnExtra-v0"], "'reprl-test/NeedsAnExtra-v0' needs a package "
                             "that is not installed: pretend-physics is not installed"),
    "action space": (["--agent", "dqn", "--env", "Pendulum-v1"], "discrete action space"),
    "action space printed on lines": (["--agent", "dqn", "--env", "reprl-test/MatrixActions-v0"],
                                      "dqn needs a discrete action space, got Box([[-1. -2.] [-3. -4.]], "),
    "negative learning rate": (["--learning-rate", "-0.1"], "learning_rate must be positive"),
    "gamma above one": (["--gamma", "1.5"], "gamma must be in [0.0, 1.0]"),
    "zero envs": (["--num-envs", "0"], "num_envs must be at least 1"),
    "fractional envs": (["--num-envs", "2.5"], "argument --num-envs: expected an integer, got '2.5'"),
    "budget that is no number": (["--steps", "1e6x"], "argument --steps: expected an integer, got '1e6x'"),
    "more minibatches than samples": (["--agent", "ppo", "--num-envs", "2", "--num-steps", "8", "--num-minibatches", "17"],
                                      "num_minibatches must be at most num_envs x num_steps = 16"),
    "negative seed": (["--seed", "-1"], "seed must be in [0, 2147483647], got -1"),
    "encoder folder": (["--encoder-checkpoint", "tests"], "'tests' is a folder: give the encoder file in it"),
    "target net that never moves": (["--agent", "sac", "--env", "Pendulum-v1", "--tau", "0"], "tau must be positive"),
    "RMSprop that never averages": (["--agent", "a2c", "--rmsprop-alpha", "1"],
                                    "rmsprop_alpha must be in [0.0, 1.0), got 1.0"),
    "line search that never shrinks": (["--agent", "trpo", "--line-search-shrink", "1"],
                                       "line_search_shrink must be in [0.0, 1.0), got 1.0"),
    "unknown device": (["--device", "banana"], "device must be cpu, cuda, cuda:N or mps, got 'banana'"),
    "absent device": (["--device", "cuda:64"], "device 'cuda:64': this machine has"),
    "bad json": (["--encoder-options", "{oops"], "expected a JSON object"),
    "bad bool": (["--anneal-lr", "maybe"], "expected true or false"),
    "unknown encoder": (["--encoder", "transformer"], "unknown encoder 'transformer'"),
    "unknown preset": (["--preset", "turbo"], "unknown preset 'turbo'"),
    "preset of another env family": (["--preset", "parallel", "--env", "Pendulum-v1"],
                                     "preset 'parallel' of ppo is for classic envs; Pendulum-v1 is a box env"),
    "zero seeds": (["--num-seeds", "0"], "--num-seeds must be >= 1"),
    "multi-seed reinforce": (["--agent", "reinforce", "--env", "Pendulum-v1", "--num-seeds", "2"],
                             "--num-seeds trains ppo, a2c, trpo, dqn, sac; reinforce runs one seed"),
    "multi-seed standardized dqn": (["--agent", "dqn", "--standardize-features", "true", "--freeze-encoder", "true",
                                     "--num-seeds", "2"], "--standardize-features is not available"),
    "multi-seed atari": (["--env", "PongNoFrameskip-v4", "--num-seeds", "2"], "torch-native env"),
    "multi-seed on gymnasium's env": (["--backend", "gymnasium", "--num-seeds", "2"],
                                      "--backend gymnasium rules out (use --backend torch or auto)"),
    "multi-seed aux": (["--num-seeds", "2", "--aux", "curl"], "not available with --num-seeds"),
    "unknown atari option": (["--env", "Pong", "--env-options", '{"stiky_actions": 0.25}'],
                             "bad options {'stiky_actions': 0.25} for 'Pong': "),
    "unknown gymnasium option": (["--env", "CartPole-v1", "--env-options", '{"gravity": 1}'],
                                 "bad options {'gravity': 1} for 'CartPole-v1': "),
    "async non-atari": (["--agent", "dqn", "--env-batch-size", "2"], "env_batch_size needs an Atari env"),
    "async on-policy": (["--env", "Pong", "--env-batch-size", "2"], "env_batch_size needs a replay agent"),
    "async all envs": (["--agent", "dqn", "--env", "Pong", "--num-envs", "4", "--env-batch-size", "4"],
                       "env_batch_size must be below num_envs (4)"),
}


def _needs_an_extra(**_):
    raise gymnasium.error.DependencyNotInstalled("pretend-physics is not installed")


gymnasium.register("reprl-test/NeedsAnExtra-v0", entry_point=_needs_an_extra)


class _MatrixActions(gymnasium.Env):
    """Actions in a 2-D Box whose bounds differ per entry: numpy prints them on several lines."""
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,))
    action_space = gymnasium.spaces.Box(np.array([[-1, -2], [-3, -4]], np.float32), np.array([[1, 2], [3, 4]], np.float32))

    def __init__(self, render_mode=None):
        self.render_mode = render_mode


gymnasium.register("reprl-test/MatrixActions-v0", entry_point=_MatrixActions)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    argv, message = BAD_INPUTS[case]
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train.main([*argv, "--run-dir", str(run_dir), "--steps", "64", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not run_dir.exists()


@pytest.mark.parametrize("where, message", [("", "run folder '{file}' is a file"),
                                            ("/run", "Not a directory: '{file}/run'")])
def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path, capsys, where, message):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--run-dir", f"{taken}{where}", "--steps", "256", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message.format(file=taken) in err, err
    assert taken.read_text() == "a file"


def test_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupt_checkpoint_is_refused_and_left_untouched(tmp_path, capsys, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "corrupt" in err
    assert (tmp_path / "checkpoint.pt").read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_checkpoint_whose_training_state_does_not_fit_is_refused_and_left_untouched(tmp_path, capsys):
    assert train.main(["--steps", "256", "--num-envs", "2", "--num-steps", "64", "--run-dir", str(tmp_path),
                       "--no-progress", "--eval-every", "0", "--eval-episodes", "1"]) == 0
    capsys.readouterr()
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    payload["training"]["optimizer"]["param_groups"][0]["params"] = [0, 1]  # two parameters where there are 12
    torch.save(payload, tmp_path / "checkpoint.pt")
    checkpoint = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", str(tmp_path), "--steps", "512"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds training state this version of reprl cannot load" in err, err
    assert (tmp_path / "checkpoint.pt").read_bytes() == checkpoint


def test_resume_changes_only_the_budget_and_bookkeeping(tmp_path, capsys):
    """Settings that shape training are the checkpoint's; a flag that would change one is refused
    rather than ignored, while budget, device and evaluation settings apply to the resumed run."""
    common = ["--no-progress", "--eval-every", "0", "--eval-episodes", "1"]
    assert train.main(["--steps", "256", "--num-envs", "2", "--num-steps", "64", "--run-dir", str(tmp_path), *common]) == 0
    capsys.readouterr()
    checkpoint = (tmp_path / "checkpoint.pt").read_bytes()
    for flags, named in ((["--learning-rate", "0.1", "--gamma", "0.5"], "--learning-rate, --gamma cannot change"),
                         (["--agent", "dqn"], "--agent cannot change"), (["--num-seeds", "2"], "--num-seeds cannot change"),
                         (["--run-dir", str(tmp_path / "elsewhere")], "--run-dir cannot change")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--resume", str(tmp_path), "--steps", "512", *flags])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and named in err, err
        assert (tmp_path / "checkpoint.pt").read_bytes() == checkpoint
    assert train.main(["--resume", str(tmp_path), "--agent", "ppo", "--steps", "512", "--eval-episodes", "3",
                       "--no-progress"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 512 and len(summary["eval_returns"]) == 3


def test_a_run_folder_is_never_overwritten_and_a_finished_budget_is_not_resumed(tmp_path, capsys):
    """A new run in a folder that holds one (single- or multi-seed) would overwrite its checkpoint,
    logs and summary; resuming a run to a budget it has already trained would rewrite its
    summary. Both are refused, the folder left as it was."""
    common = ["--steps", "256", "--num-envs", "2", "--num-steps", "64", "--no-progress", "--eval-every", "0",
              "--eval-episodes", "1"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    assert train.main([*common, "--run-dir", str(single)]) == 0
    assert train.main([*common, "--num-seeds", "2", "--backend", "torch", "--run-dir", str(multi)]) == 0
    capsys.readouterr()
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    for argv, message in (([*common, "--seed", "7", "--run-dir", str(single)],
                           f"{single} already holds a run: continue it with --resume {single}"),
                          ([*common, "--run-dir", str(multi)], f"{multi} already holds a run"),
                          (["--resume", str(single)], "has already trained 256 steps (--steps 256): give a larger"),
                          (["--resume", str(single), "--steps", "128"], "has already trained 256 steps (--steps 128)")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(argv)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_a_run_that_died_before_its_first_checkpoint_is_started_again_in_its_folder(tmp_path, capsys):
    """Its logs are all that is left: --resume says there is nothing to resume, and a new run in
    the folder starts the logs afresh (TensorBoard is told to drop the old events)."""
    common = ["--steps", "256", "--num-envs", "2", "--num-steps", "64", "--no-progress", "--eval-every", "0",
              "--eval-episodes", "1", "--run-dir", str(tmp_path)]
    assert train.main(common) == 0
    (tmp_path / "checkpoint.pt").unlink()
    (tmp_path / "summary.json").unlink()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err == (f"error: {tmp_path} holds no checkpoint.pt: its run stopped before its "
                                                 f"first checkpoint, so nothing can be resumed; start it again with "
                                                 f"--run-dir {tmp_path}")
    assert train.main(common) == 0
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # one run's lines, not two


@pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX")
def test_a_run_still_training_in_another_process_is_not_resumed(tmp_path, capsys):
    import fcntl

    assert train.main(["--steps", "256", "--num-envs", "2", "--num-steps", "64", "--no-progress", "--eval-every", "0",
                       "--eval-episodes", "1", "--run-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with open(tmp_path / ".lock", "a") as other_process:  # what the Runner of a live run holds
        fcntl.flock(other_process, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--resume", str(tmp_path), "--steps", "512"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err == f"error: {tmp_path} is in use by another training process: " \
                                                "let it finish or stop it, then resume"
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert train.main(["--resume", str(tmp_path), "--steps", "512", "--no-progress"]) == 0  # released: resumes


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    import pickle

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (tmp_path / "checkpoint.pt").write_bytes(pickle.dumps({"format": "reprl-agent-v1", "x": Exploit()}))
    with pytest.raises(SystemExit):
        train.main(["--resume", str(tmp_path)])
    assert not (tmp_path / "pwned").exists()
    assert "corrupt" in capsys.readouterr().err


def test_real_process_exit_status_and_stderr(tmp_path):
    result = subprocess.run([sys.executable, str(TRAIN), "--agent", "ppo", "--gamma", "-1",
                             "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: gamma must be in [0.0, 1.0], got -1.0"]
    assert not (tmp_path / "run").exists()


def test_sigterm_stops_training_at_a_checkpoint_it_can_resume_from(tmp_path):
    """What a scheduler sends before it kills a job: the run stops after its step under way."""
    process = subprocess.Popen([sys.executable, str(TRAIN), "--steps", "10000000", "--num-envs", "2", "--num-steps", "64",
                                "--eval-every", "0", "--log-every", "128", "--no-progress", "--run-dir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ((tmp_path / "metrics.jsonl").is_file() and (tmp_path / "metrics.jsonl").stat().st_size):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == f"interrupted: continue with --resume {tmp_path}"
    assert 0 < torch.load(tmp_path / "checkpoint.pt", weights_only=True)["runner"]["step"] < 10_000_000


def test_integer_flags_take_scientific_notation(tmp_path):
    args = train.build_parser("dqn").parse_args(["--steps", "1e6", "--learning-starts", "5e4", "--num-envs", "4"])
    assert (args.steps, args.learning_starts, args.num_envs) == (1_000_000, 50_000, 4)
    assert all(type(value) is int for value in (args.steps, args.learning_starts, args.num_envs))

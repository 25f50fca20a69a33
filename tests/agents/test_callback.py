"""``learn(callback=...)``: the callback sees every logged line and can end training early, the
way Stable-Baselines3's callbacks stop ``learn`` (a reward threshold), leaving a resumable run."""
import json

from agents import PPO
from agents.base import AGENT_FORMAT, Agent
from agents.checkpoint import load_checkpoint
from agents.multi_seed import build_multi_seed
from agents.runner import CHECKPOINT, Runner

SETTINGS = dict(steps=6_144, num_envs=4, num_steps=64, eval_every=512, eval_episodes=3, log_every=256)


def logged(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_the_callback_sees_every_line_logged(tmp_path):
    seen = []
    PPO.from_env("CartPole-v1", **SETTINGS).learn(run_dir=tmp_path, progress=False,
                                                  callback=lambda step, metrics: seen.append((step, metrics)))
    lines = logged(tmp_path)
    assert len(seen) == len(lines)
    for (step, metrics), line in zip(seen, lines):
        assert metrics.pop("seed") == 1 and step == line.pop("step")
        line.pop("time")
        assert metrics == line


def test_returning_false_ends_the_run_there_and_a_resume_takes_it_on(tmp_path):
    def stop_at_60(step, metrics):
        return metrics.get("eval/return_mean", 0.0) < 60

    agent = PPO.from_env("CartPole-v1", seed=3, **SETTINGS)
    agent.learn(run_dir=tmp_path, progress=False, callback=stop_at_60)
    evaluations = [(line["step"], line["eval/return_mean"]) for line in logged(tmp_path) if "eval/return_mean" in line]
    stop_step, stop_return = evaluations[-1]
    assert stop_return >= 60 and all(mean < 60 for _, mean in evaluations[:-1]) and stop_step < SETTINGS["steps"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["steps"], summary["eval_return_mean"]) == (stop_step, stop_return)  # no second final evaluation
    payload = load_checkpoint(tmp_path / CHECKPOINT, AGENT_FORMAT)
    assert payload["runner"]["step"] == stop_step

    resumed = Runner(Agent.from_payload(payload), run_dir=tmp_path, progress=False, resume=payload).run()
    assert resumed["steps"] == SETTINGS["steps"]


def test_a_multi_seed_run_shows_each_seed_s_lines(tmp_path):
    single = PPO.from_env("CartPole-v1", backend="torch", **SETTINGS)
    agent = build_multi_seed(PPO, single.config, single.observation_space, single.action_space, [4, 7])
    seeds_by_step: dict[int, list[int]] = {}
    Runner(agent, run_dir=tmp_path, progress=False,
           callback=lambda step, metrics: seeds_by_step.setdefault(step, []).append(metrics["seed"])).run()
    # each step's lines come once per seed (twice where an evaluation shares a logging step)
    assert seeds_by_step and all(sorted(seeds) in ([4, 7], [4, 4, 7, 7]) for seeds in seeds_by_step.values())

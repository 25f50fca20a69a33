"""Multi-seed PPO, A2C, TRPO, DQN and SAC: K seeds trained as one batched run compute exactly what each seed
computes alone, write one run directory per seed, and resume exactly."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from agents import A2C, DQN, PPO, REINFORCE, SAC, TRPO
from agents.base import AGENT_FORMAT, Agent
from agents.checkpoint import load_checkpoint
from agents.multi_seed import MultiSeed, build_multi_seed
from agents.multi_seed_dqn import StackedQNetwork
from agents.multi_seed_on_policy import StackedActorCritic
from agents.multi_seed_sac import StackedPolicyHead, StackedTwinQ
from agents.runner import CHECKPOINT, Runner
from agents.seed_stack import SeedStack
from representation.linear import Linear, goes_to_onednn
from test_resume import Crash, crash_after

RUN = dict(steps=1_024, num_envs=4, eval_every=512, eval_episodes=2, log_every=256, checkpoint_every=256,
           backend="torch")
# A2C with normalised advantages: a normalisation across seeds would mix them. DQN as a small
# Rainbow without the noise and the priorities, and as the whole of it. SAC with n-step returns
# and gradient clipping, on Gaussian and on discrete actions.
SETTINGS = {PPO: dict(RUN, num_steps=32, update_epochs=3, num_minibatches=2), A2C: dict(RUN, num_steps=8, norm_adv=True),
            DQN: dict(RUN, learning_starts=200, train_frequency=16, gradient_steps=4, batch_size=16, buffer_size=2_000,
                      target_update_interval=64, double=True, dueling=True, n_step=3, distributional=True,
                      atoms=11, v_min=0.0, v_max=50.0, encoder_options={"hidden_sizes": [32, 32]}),
            TRPO: dict(RUN, num_steps=64, critic_updates=2, critic_batch_size=64, cg_iters=10),
            SAC: dict(RUN, learning_starts=200, train_frequency=8, gradient_steps=2, batch_size=16, buffer_size=2_000,
                      n_step=3, max_grad_norm=1.0, head_width=32, encoder_options={"hidden_sizes": [32]})}
# Each case: (agent, env, the network it acts with, settings of the case).
CASES = {"ppo": (PPO, "CartPole-v1", "net", {}), "a2c": (A2C, "CartPole-v1", "net", {}),
         # each seed's observations and rewards scaled by its own running statistics
         "ppo-normalized": (PPO, "Acrobot-v1", "net", {"normalize_obs": True, "normalize_reward": True}),
         "trpo": (TRPO, "CartPole-v1", "net", {}), "trpo-gaussian": (TRPO, "Pendulum-v1", "net", {}),
         "dqn": (DQN, "CartPole-v1", "q", {}),
         "rainbow": (DQN, "CartPole-v1", "q", {"noisy": True, "prioritized": True}),
         "sac": (SAC, "Pendulum-v1", "actor_head", {}),
         "sac-discrete": (SAC, "CartPole-v1", "actor_head", {}),
         "sac-shared-encoder": (SAC, "Pendulum-v1", "actor_head", {"shared_encoder": True})}
AGENTS = pytest.mark.parametrize("case", ["ppo", "a2c", "trpo", "dqn", "rainbow", "sac", "sac-discrete"])


def multi_seed(seeds: list[int], case: str = "ppo", **settings) -> MultiSeed:
    agent_cls, env_id, _, case_settings = CASES[case]
    template = agent_cls.from_env(env_id, **{**SETTINGS[agent_cls], **case_settings, **settings})
    return build_multi_seed(agent_cls, template.config, template.observation_space, template.action_space, seeds)


def small_networks(count: int, layer_norm: bool = False) -> list[nn.Module]:
    """Linear-tanh-linear nets, which a SeedStack runs directly; with a LayerNorm, under vmap."""
    networks = []
    for seed in range(count):
        torch.manual_seed(seed)
        middle = [nn.LayerNorm(8)] if layer_norm else []
        networks.append(nn.Sequential(nn.Linear(3, 8), *middle, nn.Tanh(), nn.Linear(8, 2)))
    return networks


@pytest.mark.parametrize("batch_shape", [(), (5,), (4, 6)], ids=["unbatched", "batch", "two-batch-dims"])
@pytest.mark.parametrize("layer_norm", [False, True], ids=["direct", "vmap"])
def test_seed_stack_runs_each_copy_on_its_own_rows(layer_norm, batch_shape):
    networks = small_networks(3, layer_norm)
    stack = SeedStack(networks)
    assert stack.runs_directly is not layer_norm
    inputs = torch.randn(3, *batch_shape, 3)
    outputs = stack.call("forward", inputs)
    for k, network in enumerate(networks):
        assert torch.allclose(outputs[k], network(inputs[k]), atol=1e-6)
    copy = stack.copy_into(1, small_networks(1, layer_norm)[0])
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), networks[1].state_dict().values()))


@pytest.mark.parametrize("layer_norm", [False, True], ids=["direct", "vmap"])
def test_seed_stack_gradients_and_clipping_are_per_copy(layer_norm):
    networks = small_networks(3, layer_norm)
    stack = SeedStack(networks)
    inputs = torch.randn(3, 5, 3) * torch.tensor([1.0, 10.0, 100.0]).view(3, 1, 1)  # very different norms
    inputs.requires_grad_()
    stack.call("forward", inputs).square().mean((1, 2)).sum().backward()
    norms = stack.clip_grad_norm_(1.0)
    for k, network in enumerate(networks):
        own_inputs = inputs[k].detach().requires_grad_()
        network(own_inputs).square().mean().backward()
        assert torch.allclose(inputs.grad[k], own_inputs.grad, rtol=1e-4, atol=1e-7)
        expected_norm = nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        assert torch.allclose(norms[k], expected_norm, rtol=1e-5)
        for stacked, own in zip(stack.stacked, network.parameters()):
            assert torch.allclose(stacked.grad[k], own.grad, rtol=1e-4, atol=1e-7)


def test_copies_with_large_products_compute_copy_by_copy_what_each_network_computes():
    """Layers whose product goes to oneDNN (``representation.linear``) run copy by copy:
    each copy's outputs and gradients are its own network's to the bit, whatever K."""
    networks = []
    for seed in range(3):
        torch.manual_seed(seed)
        networks.append(nn.Sequential(Linear(256, 256), nn.ReLU(), Linear(256, 4)))
    inputs = torch.randn(3, 128, 256)  # 128 x 256 x 256 multiply-adds a copy: past the threshold
    assert goes_to_onednn(inputs[0], networks[0][0].weight)
    stacks = [SeedStack(networks), SeedStack(networks[1:2])]
    outputs = [stack.call("forward", rows) for stack, rows in zip(stacks, (inputs, inputs[1:2]))]
    for stack, output in zip(stacks, outputs):
        output.square().sum().backward()
    for k, network in enumerate(networks):
        own = network(inputs[k])
        own.square().sum().backward()
        assert torch.equal(outputs[0][k], own)
        assert all(torch.equal(stacked.grad[k], p.grad) for stacked, p in zip(stacks[0].stacked, network.parameters()))
    assert torch.equal(outputs[1][0], outputs[0][1])  # a lone copy, as the second of three


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_stacked_actor_critics_run_directly_and_give_each_network_its_own_outputs(env_id):
    """The categorical and Gaussian actor-critics run without vmap; the Gaussian head's log-std,
    a parameter outside any linear layer, broadcasts copy k against row k only."""
    agents = [PPO.from_env(env_id, **SETTINGS[PPO], seed=seed) for seed in (1, 2, 3)]
    for k, agent in enumerate(agents):
        if hasattr(agent.net.policy, "log_std"):  # a different log-std per copy
            agent.net.policy.log_std.data.fill_(-0.5 * k)
    stacked = StackedActorCritic([agent.net for agent in agents])
    assert stacked.stack.runs_directly
    obs = torch.randn(3, 5, agents[0].observation_space.shape[0])
    dist_inputs, values = stacked.stack.call("dist_inputs_and_value", obs)
    for k, agent in enumerate(agents):
        own_inputs, own_value = agent.net.dist_inputs_and_value(obs[k])
        for stacked_input, own_input in zip(dist_inputs, own_inputs, strict=True):
            assert torch.allclose(stacked_input[k], own_input, atol=1e-6)
        assert torch.allclose(values[k], own_value, atol=1e-6)


@pytest.mark.parametrize("distributional, noisy", [(False, False), (True, False), (True, True)],
                         ids=["q", "c51", "noisy-c51"])
def test_stacked_q_networks_run_directly_and_give_each_network_its_own_outputs(distributional, noisy):
    """Dueling heads (two streams) with scalar or distributional outputs, plain or NoisyNet
    layers, run without vmap; each network's noise is drawn from its own generator."""
    settings = dict(SETTINGS[DQN], distributional=distributional, noisy=noisy)
    networks = [DQN.from_env("CartPole-v1", **settings, seed=seed).q for seed in (1, 2, 3)]
    stacked = StackedQNetwork(networks)
    assert stacked.stack.runs_directly
    if noisy:
        stacked.reset_noise([torch.Generator().manual_seed(seed) for seed in (1, 2, 3)])
        for seed, network in zip((1, 2, 3), networks):
            network.head.reset_noise(torch.Generator().manual_seed(seed))
        assert not torch.equal(networks[0].head.advantage[0].eps_in, networks[1].head.advantage[0].eps_in)
    obs = torch.randn(3, 5, 4)
    for noise in (True, False):
        logits, q_values = stacked(obs, noise=noise), stacked.q_values(obs, noise=noise)
        for k, network in enumerate(networks):
            assert torch.allclose(logits[k], network(obs[k], noise=noise), atol=1e-6)
            assert torch.allclose(q_values[k], network.q_values(obs[k], noise=noise), atol=1e-5)
    if noisy:  # the noise does move the outputs
        assert not torch.allclose(stacked(obs, noise=True), stacked(obs, noise=False), atol=1e-4)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_stacked_sac_networks_run_directly_and_give_each_network_its_own_outputs(env_id):
    """Twin critics (with or without an action input), their encoders and the actor heads, a
    Gaussian one sampling with the noise it is given."""
    agents = [SAC.from_env(env_id, **SETTINGS[SAC], seed=seed) for seed in (1, 2, 3)]
    critics = StackedTwinQ([agent.critic for agent in agents])
    heads = StackedPolicyHead([agent.actor_head for agent in agents])
    assert critics.stack.runs_directly and heads.stack.runs_directly
    obs = torch.randn(3, 5, agents[0].observation_space.shape[0])
    features = torch.randn(3, 5, 32)
    if env_id == "Pendulum-v1":
        actions = torch.rand(3, 5, 1) * 2 - 1
        noise = torch.randn(3, 5, 1)
        q_values, sampled = critics(obs, actions), heads.sample(features, noise)
        own_q = [agent.critic(obs[k], actions[k]) for k, agent in enumerate(agents)]
        own_sampled = [agent.actor_head.sample(features[k], noise[k]) for k, agent in enumerate(agents)]
    else:
        q_values, sampled = critics(obs), (heads(features),)
        own_q = [agent.critic(obs[k]) for k, agent in enumerate(agents)]
        own_sampled = [(agent.actor_head(features[k]),) for k, agent in enumerate(agents)]
    encoded = critics.encoder(obs)
    for k, agent in enumerate(agents):
        assert torch.allclose(encoded[k], agent.critic.encoder(obs[k]), atol=1e-6)
        for stacked, own in zip((*q_values, *sampled), (*own_q[k], *own_sampled[k]), strict=True):
            assert torch.allclose(stacked[k], own, atol=1e-5)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_stacked_trpo_takes_each_seeds_own_fisher_vector_products(env_id):
    """The K seeds' products come from one double backward through the stacked networks (tanh
    through the sigmoid included); each equals that of the seed's own network."""
    agent = multi_seed([1, 2, 3], "trpo" if env_id == "CartPole-v1" else "trpo-gaussian")
    seed_agents = agent.seed_agents()
    obs = torch.randn(3, 40, agent.observation_space.shape[0])
    vectors = torch.randn(3, agent.to_vector(agent.policy_params).shape[-1])
    products = agent.fisher_vector_product(obs)(vectors)
    for k, seed_agent in enumerate(seed_agents):
        own = seed_agent.fisher_vector_product(obs[k])(vectors[k])
        torch.testing.assert_close(products[k], own, rtol=1e-4, atol=1e-6)


@AGENTS
def test_each_seed_starts_from_the_weights_of_its_own_plain_run(case):
    agent_cls, env_id, _, case_settings = CASES[case]
    agent = multi_seed([4, 9], case)
    for seed, seed_agent in zip([4, 9], agent.seed_agents()):
        plain = agent_cls.from_env(env_id, **SETTINGS[agent_cls], **case_settings, seed=seed)
        for (name, a), b in zip(plain.state_dict().items(), seed_agent.state_dict().values(), strict=True):
            assert torch.equal(a, b), name


@pytest.mark.parametrize("case", ["ppo", "a2c", "ppo-normalized", "trpo", "trpo-gaussian", "dqn", "rainbow", "sac",
                                  "sac-discrete", "sac-shared-encoder"])
def test_a_seed_trained_with_others_equals_the_seed_trained_alone(tmp_path, case):
    together = multi_seed([1, 2, 3], case)
    summaries = Runner(together, run_dir=tmp_path / "together", progress=False).run_seeds()
    alone = multi_seed([2], case)
    (summary_alone,) = Runner(alone, run_dir=tmp_path / "alone", progress=False).run_seeds()
    for a, b in zip(together.seed_agents()[1].state_dict().values(), alone.seed_agents()[0].state_dict().values()):
        assert torch.equal(a, b)
    assert summaries[1]["eval_returns"] == summary_alone["eval_returns"]
    # The three seeds did learn different things.
    first, second = (getattr(agent, CASES[case][2]).parameters() for agent in together.seed_agents()[:2])
    assert all(not torch.equal(a, b) for a, b in zip(first, second, strict=True))
    # Seed 2's logs equal its lone run's, line by line, except the clock.
    drop_time = lambda line: {k: v for k, v in json.loads(line).items() if k not in ("time", "charts/sps")}  # noqa: E731
    logged_together = (tmp_path / "together" / "seed_2" / "metrics.jsonl").read_text().splitlines()
    logged_alone = (tmp_path / "alone" / "metrics.jsonl").read_text().splitlines()
    assert [drop_time(x) for x in logged_together] == [drop_time(x) for x in logged_alone]


@AGENTS
def test_one_directory_per_seed_with_a_loadable_agent(tmp_path, case):
    agent_cls = CASES[case][0]
    agent = multi_seed([5, 6], case)
    summaries = Runner(agent, run_dir=tmp_path, progress=False).run_seeds()
    assert [s["seed"] for s in summaries] == [5, 6] and all(s["steps"] == RUN["steps"] for s in summaries)
    for seed, seed_agent in zip([5, 6], agent.seed_agents()):
        seed_dir = tmp_path / f"seed_{seed}"
        assert json.loads((seed_dir / "config.json").read_text())["seed"] == seed
        assert json.loads((seed_dir / "summary.json").read_text())["seed"] == seed
        loaded = agent_cls.load(seed_dir / "agent.pt")
        assert type(loaded) is agent_cls
        obs = torch.randn(6, *seed_agent.observation_space.shape)
        assert torch.equal(loaded.act(obs, explore=False), seed_agent.act(obs, explore=False))


@pytest.mark.parametrize("case", ["ppo", "a2c", "ppo-normalized", "trpo", "dqn", "rainbow", "sac", "sac-discrete"])
def test_a_crashed_multi_seed_run_resumes_exactly(tmp_path, case):
    agent_cls = CASES[case][0]
    unbroken = multi_seed([1, 2], case)
    Runner(unbroken, run_dir=tmp_path / "unbroken", progress=False).run_seeds()
    crashed = multi_seed([1, 2], case)
    crash_after(crashed, 700)
    with pytest.raises(Crash):
        Runner(crashed, run_dir=tmp_path / "crashed", progress=False).run_seeds()
    payload = load_checkpoint(tmp_path / "crashed" / CHECKPOINT, AGENT_FORMAT)
    resumed = Agent.from_payload(payload)
    assert isinstance(resumed, MultiSeed) and isinstance(resumed, agent_cls) and resumed.seeds == [1, 2]
    Runner(resumed, run_dir=tmp_path / "crashed", progress=False, resume=payload).run_seeds()
    for (name, a), b in zip(unbroken.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_settings_that_mix_the_seeds_are_refused():
    with pytest.raises(ValueError, match="--target-kl"):
        multi_seed([1, 2], target_kl=0.01)
    with pytest.raises(ValueError, match="distinct seeds"):
        multi_seed([1, 1])
    for setting, options in (("replay-features", {"replay_features": True, "freeze_encoder": True}),
                             ("standardize-features", {"standardize_features": True, "freeze_encoder": True})):
        with pytest.raises(ValueError, match=f"--{setting} is not available with --num-seeds"):
            multi_seed([1, 2], "dqn", **options)
    with pytest.raises(ValueError, match="--num-seeds trains ppo, a2c, trpo, dqn, sac; reinforce runs one seed"):
        template = REINFORCE.from_env("CartPole-v1", backend="torch")
        build_multi_seed(REINFORCE, template.config, template.observation_space, template.action_space, [1, 2])


def test_command_line_trains_multi_seed_dqn_and_resumes_it_to_a_larger_budget(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import train

    common = ["--eval-every", "0", "--eval-episodes", "1", "--no-progress"]
    assert train.main(["--agent", "dqn", "--env", "CartPole-v1", "--backend", "torch", "--num-seeds", "2", "--seed", "3",
                       "--steps", "600", "--learning-starts", "200", "--run-dir", str(tmp_path), *common]) == 0
    assert train.main(["--resume", str(tmp_path), "--steps", "800", *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if " after " not in line] == [  # --no-progress: evaluations as lines
        "seed_3 step 600", "seed_4 step 600", "seed_3 step 800", "seed_4 step 800"]
    assert [line.split(" after ")[1].split()[0] for line in lines if " after " in line] == ["600", "600", "800", "800"]
    for seed in (3, 4):
        assert json.loads((tmp_path / f"seed_{seed}" / "summary.json").read_text())["steps"] == 800
        assert type(DQN.load(tmp_path / f"seed_{seed}" / "agent.pt")) is DQN

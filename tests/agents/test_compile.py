"""``--compile``: compiled agents train like eager ones, save and load either way, and compile
each loss once per batch-size regime (no recompilation from annealed scalars); on the CPU, PPO's,
A2C's and DQN's whole gradient steps and the on-policy agents' acting are compiled without
TorchDynamo (``agents.traced_graphs``)."""
import pytest
import torch
import torch._dynamo
from torch._dynamo.eval_frame import _debug_get_cache_entry_list

from agents import A2C, DQN, PPO, REINFORCE, SAC, QLearning
from agents.compilation import compile_env_step, resolve_compile_mode, uses_cuda_graphs
from agents.evaluation import evaluate, make_eval_env
from agents.traced_graphs import TracedGraphs
from replay import Batch
from test_resume import crash_and_checkpoint, resume

# 3 envs x 10 steps cut into 4 minibatches: sizes 8, 8, 7, 7, so the loss sees two batch sizes.
# Clipping range and learning rate are annealed: both change at every rollout.
PPO_SETTINGS = dict(steps=90, num_envs=3, num_steps=10, num_minibatches=4, update_epochs=2, anneal_clip=True,
                    anneal_lr=True, eval_every=0, checkpoint_every=0, eval_episodes=1, log_every=30)
# 30 gradient steps after 100 random ones; epsilon decays over the whole run.
DQN_SETTINGS = dict(steps=400, num_envs=2, learning_starts=100, train_frequency=50, gradient_steps=5, batch_size=16,
                    buffer_size=1_000, target_update_interval=100, exploration_fraction=1.0, eval_every=0,
                    checkpoint_every=0, eval_episodes=1, log_every=100,
                    encoder_options={"hidden_sizes": [32, 32], "activation": "relu"})


def compiled_versions(method) -> int:
    """How many compiled versions (one per guard set: batch-size regime, grad mode) ``method`` has."""
    return len(_debug_get_cache_entry_list(method.__code__))


def dynamo_graphs() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def train_pair(agent_cls, settings, tmp_path, env_id="CartPole-v1"):
    """The same seed trained eagerly and compiled; also returns the graphs ``TracedGraphs``
    compiled meanwhile, after checking that TorchDynamo compiled none."""
    torch._dynamo.reset()
    dynamo_before, traced_before = dynamo_graphs(), TracedGraphs.compiled
    eager = agent_cls.from_env(env_id, **settings).learn(run_dir=tmp_path / "eager", progress=False)
    compiled = agent_cls.from_env(env_id, compile=True, **settings).learn(run_dir=tmp_path / "compiled",
                                                                          progress=False)
    assert dynamo_graphs() == dynamo_before
    return eager, compiled, TracedGraphs.compiled - traced_before


def last_rollout(agent: PPO) -> Batch:
    """8 rows of the rollout still in the agent's buffer (its last one)."""
    buffer = agent.buffer

    def rows(tensor):
        return tensor.flatten(0, 1)[:8]
    return Batch(obs=rows(buffer.obs), action=rows(buffer.action), log_prob=rows(buffer.log_prob),
                 value=rows(buffer.value), advantage=rows(buffer.advantages), returns=rows(buffer.returns))


def assert_same_state(a, b, atol):
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    for key in state_a:
        torch.testing.assert_close(state_a[key], state_b[key], atol=atol, rtol=0, msg=key)


def test_compile_mode_auto_is_cuda_graphs_on_cuda_and_default_elsewhere():
    assert resolve_compile_mode("auto", torch.device("cuda")) == "reduce-overhead"
    assert resolve_compile_mode("auto", torch.device("cpu")) == "default"
    assert resolve_compile_mode("max-autotune", torch.device("cpu")) == "max-autotune"
    assert uses_cuda_graphs("reduce-overhead", torch.device("cuda"))
    assert not uses_cuda_graphs("reduce-overhead", torch.device("cpu"))
    assert not uses_cuda_graphs("max-autotune-no-cudagraphs", torch.device("cuda"))


def test_bad_compile_settings_raise_value_errors():
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        PPO.from_env("CartPole-v1", compile=True, compile_mode="fast")
    with pytest.raises(ValueError, match="qlearning has no networks to compile"):
        QLearning.from_env("CliffWalking-v1", compile=True)


def test_compiled_ppo_trains_like_eager_and_compiles_its_gradient_step_once_per_batch_regime(tmp_path):
    eager, compiled, graphs = train_pair(PPO, PPO_SETTINGS, tmp_path)
    # The runs took the same actions (same rollouts) and ended at the same weights.
    torch.testing.assert_close(compiled.buffer.action, eager.buffer.action, atol=0, rtol=0)
    torch.testing.assert_close(compiled.buffer.log_prob, eager.buffer.log_prob, atol=1e-5, rtol=0)
    assert_same_state(compiled, eager, atol=1e-5)
    # 18 updates at two batch sizes and three clipping ranges: each a whole gradient step (the
    # minibatch's gather and standardisation, loss, gradient, clipping, Adam) compiled once for
    # each size (8 and 7); acting on 3 envs and the critic on a rollout's observations once each.
    assert graphs == 4
    # The compiled loss computes the eager one's values.
    batch = last_rollout(eager)
    eager_loss, eager_metrics = PPO.loss(compiled, batch, torch.tensor(0.1))
    compiled_loss, compiled_metrics = compiled.loss(batch, torch.tensor(0.1))
    torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-6, rtol=0)
    for name, value in eager_metrics.items():
        torch.testing.assert_close(compiled_metrics[name], value, atol=1e-6, rtol=0, msg=name)


def test_compiled_ppo_steps_a_gaussian_policy_and_its_log_std_like_eager(tmp_path):
    settings = dict(steps=512, num_envs=2, num_steps=64, num_minibatches=2, update_epochs=2, eval_every=0,
                    checkpoint_every=0, eval_episodes=1, log_every=256)
    eager, compiled, graphs = train_pair(PPO, settings, tmp_path, env_id="Pendulum-v1")
    assert not torch.equal(compiled.net.policy.log_std, torch.zeros(1))  # it trained
    assert_same_state(compiled, eager, atol=1e-5)
    assert graphs == 3  # the gradient step, acting with Gaussian draws, the rollout's values


def test_compiled_ppo_on_large_batches_trains_like_eager_with_onednn_products_and_the_sigmoid_tanh(tmp_path):
    """256-row acting batches and 512-row minibatches of 256-unit layers take oneDNN's products
    (``representation.linear``), eagerly and as calls from the compiled graphs, and the tanh
    through the sigmoid (``representation.encoders.activations``), which inductor fuses."""
    settings = dict(backend="torch", steps=4096, num_envs=256, num_steps=8, num_minibatches=4, update_epochs=2,
                    eval_every=0, checkpoint_every=0, eval_episodes=1, log_every=2048,
                    encoder_options={"hidden_sizes": [256, 256], "activation": "tanh"})
    eager, compiled, graphs = train_pair(PPO, settings, tmp_path)
    torch.testing.assert_close(compiled.buffer.action, eager.buffer.action, atol=0, rtol=0)
    assert_same_state(compiled, eager, atol=1e-5)
    assert graphs == 4  # the gradient step, acting, the rollout's values and the torch env's step


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_compiled_a2c_trains_like_eager_with_either_optimizer_in_its_gradient_step(tmp_path, optimizer):
    settings = dict(steps=200, num_envs=4, num_steps=5, optimizer=optimizer, anneal_lr=True, eval_every=0,
                    checkpoint_every=0, eval_episodes=1, log_every=100)
    eager, compiled, graphs = train_pair(A2C, settings, tmp_path)
    torch.testing.assert_close(compiled.buffer.action, eager.buffer.action, atol=0, rtol=0)
    assert_same_state(compiled, eager, atol=1e-5)
    assert compiled.optimizer.state_dict()["state"][0]["step"] == eager.optimizer.state_dict()["state"][0]["step"] == 10
    assert graphs == 3  # the gradient step, acting, the rollout's values


def test_compiled_dqn_trains_like_eager_and_compiles_its_gradient_step_once(tmp_path):
    eager, compiled, graphs = train_pair(DQN, DQN_SETTINGS, tmp_path)
    torch.testing.assert_close(compiled.buffer.action, eager.buffer.action, atol=0, rtol=0)
    assert_same_state(compiled, eager, atol=1e-5)
    # 30 gradient steps of one batch size: one graph (loss, gradient, clipping, Adam); a round's
    # targets; epsilon-greedy acting (the network call and the pick between its draws), whose
    # actions matched the eager ones; and the replay buffer's add, which stored what eager adds did.
    assert graphs == 4
    for name, stored in compiled.buffer.state_dict().items():
        if isinstance(stored, torch.Tensor):
            assert torch.equal(stored, eager.buffer.state_dict()[name]), name
    compiled.step = 250  # epsilon is a tensor input: another value does not recompile
    batch = eager.buffer.sample(16)
    compiled_loss, compiled_priority, compiled_metrics = compiled.loss(batch, compiled.current_epsilon())
    eager_loss, eager_priority, eager_metrics = DQN.loss(compiled, batch, compiled.current_epsilon())
    torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-6, rtol=0)
    torch.testing.assert_close(compiled_priority, eager_priority, atol=1e-5, rtol=0)
    torch.testing.assert_close(compiled_metrics["losses/q_values"], eager_metrics["losses/q_values"], atol=1e-5,
                               rtol=0)
    assert compiled_versions(DQN.loss) == 1


def test_compiled_dqn_draws_its_exploring_actions_before_the_graph(tmp_path):
    """Inductor orders a graph's independent ops as it likes, and PyTorch 2.11 drew epsilon-greedy's
    uniforms before its random actions: the draws come in as arguments, so the compiled step
    gives the same actions whatever the generator's state."""
    agent = DQN.from_env("CartPole-v1", compile=True, **DQN_SETTINGS).learn(run_dir=tmp_path, progress=False)
    assert "epsilon_greedy" in agent.__dict__  # the traced graph, not the method
    obs, epsilon = torch.randn(32, 4), torch.tensor(0.5)
    random_actions, uniforms = agent.random_actions(32), agent.uniforms(32)
    torch.manual_seed(0)
    first = agent.epsilon_greedy(obs, epsilon, random_actions, uniforms)
    torch.manual_seed(1)
    assert torch.equal(agent.epsilon_greedy(obs, epsilon, random_actions, uniforms), first)
    greedy = agent.greedy_action(obs, True)
    assert torch.equal(first, torch.where(uniforms < 0.5, random_actions, greedy))
    assert (first != greedy).any() and (first == greedy).any()  # some rows explored, some did not


def test_compiled_reinforce_compiles_its_loss_once_for_episodes_of_any_length(tmp_path):
    """Each update's batch is the rollout's complete episodes, a new size almost every time: one
    graph for a symbolic size, not one per size (which would hit dynamo's recompile limit)."""
    settings = dict(steps=1_500, num_envs=2, episodes_per_update=2, eval_every=0, checkpoint_every=0,
                    eval_episodes=1, log_every=500)
    torch._dynamo.reset()
    eager = REINFORCE.from_env("CartPole-v1", **settings)
    compiled = REINFORCE.from_env("CartPole-v1", compile=True, **settings)
    sizes = []
    compiled_update = compiled.update
    compiled.update = lambda batch: sizes.append(len(batch.obs)) or compiled_update(batch)
    eager.learn(run_dir=tmp_path / "eager", progress=False)
    compiled.learn(run_dir=tmp_path / "compiled", progress=False)
    assert len(set(sizes)) > torch._dynamo.config.recompile_limit
    assert max(sizes) < 512  # below the sigmoid tanh's threshold: one code path, one graph
    assert compiled_versions(REINFORCE.loss) == 1
    assert_same_state(compiled, eager, atol=1e-5)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_compiled_sac_trains_like_eager_with_products_large_enough_for_onednn(tmp_path, env_id):
    """SAC's three steps (critics, actor through the critics it must not train, temperature) and
    its acting compile whole, its 256-unit layers' products through oneDNN as they run eagerly
    (including the sum of both critics' gradients into their shared encoder, which inductor
    would fuse into one op), and train as eagerly, continuous and discrete: for 8 updates, as
    rounding differences then grow by orders of magnitude within a few more (Adam steps each
    weight by about the learning rate whatever its gradient's size, so a gradient near zero that
    rounds to either sign moves its weight apart)."""
    settings = dict(steps=68, learning_starts=60, batch_size=64, eval_every=0, checkpoint_every=0, eval_episodes=1,
                    log_every=60, encoder_options={"hidden_sizes": [256, 256], "activation": "relu"})
    eager, compiled, graphs = train_pair(SAC, settings, tmp_path, env_id)
    # the same draws: the actions differ by the weights' rounding alone
    torch.testing.assert_close(compiled.buffer.action, eager.buffer.action, atol=1e-3, rtol=0)
    assert_same_state(compiled, eager, atol=1e-4)
    # the three gradient steps, acting while training, greedy acting in the final evaluation and
    # the replay buffer's add
    assert graphs == 6


def test_compiled_agents_save_and_load_with_and_without_compile(tmp_path):
    torch._dynamo.reset()
    compiled = PPO.from_env("CartPole-v1", compile=True, **PPO_SETTINGS)
    compiled.learn(run_dir=tmp_path / "run", progress=False)
    compiled.save(tmp_path / "compiled.pt")
    loaded = PPO.load(tmp_path / "compiled.pt")
    assert loaded.config.compile
    assert_same_state(loaded, compiled, atol=0)
    eager = PPO.from_env("CartPole-v1", **PPO_SETTINGS)
    eager.load_state_dict(compiled.state_dict())  # strict: compiling renames no parameter
    eager.save(tmp_path / "eager.pt")
    recompiled = PPO.from_env("CartPole-v1", compile=True, **PPO_SETTINGS)
    recompiled.load_state_dict(PPO.load(tmp_path / "eager.pt").state_dict())
    obs = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    for agent in (loaded, eager, recompiled):
        torch.testing.assert_close(agent.act(obs, explore=False), compiled.act(obs, explore=False))
    batch = last_rollout(compiled)
    losses = [agent.loss(batch, torch.tensor(0.2))[0] for agent in (compiled, loaded, eager, recompiled)]
    for loss in losses[1:]:
        torch.testing.assert_close(loss, losses[0], atol=1e-6, rtol=0)
    # Agents built from a file or anew reuse the graph TorchDynamo compiled for the first one's
    # loss (called here on one batch size); each compiles its own gradient steps and acting.
    assert compiled_versions(PPO.loss) == 1
    traced_before = TracedGraphs.compiled
    recompiled.learn(run_dir=tmp_path / "again", progress=False)
    assert TracedGraphs.compiled - traced_before == 4


def test_compiled_periodic_evaluations_play_the_eager_episodes(tmp_path):
    """With --compile and periodic evaluations, evaluation's greedy acting and its torch-native
    envs' steps run as graphs too, and score the episodes the eager ones do."""
    settings = {**PPO_SETTINGS, "steps": 600, "num_envs": 4, "num_steps": 50, "eval_every": 400, "eval_episodes": 6,
                "backend": "torch"}
    traced_before = TracedGraphs.compiled
    compiled = PPO.from_env("CartPole-v1", compile=True, **settings).learn(run_dir=tmp_path, progress=False)
    # acting, the rollout's values, the gradient step, the training env's step, then evaluation's
    # greedy acting and its envs' step
    assert TracedGraphs.compiled - traced_before == 6
    assert "greedy_action" in compiled.__dict__
    eager = PPO.from_env("CartPole-v1", **settings)
    eager.load_state_dict(compiled.state_dict())
    compiled_env, eager_env = make_eval_env(compiled.config), make_eval_env(eager.config)
    compile_env_step(compiled_env, "default")
    compiled_returns, eager_returns = evaluate(compiled, compiled_env), evaluate(eager, eager_env)
    assert eager_returns.tolist() == compiled_returns.tolist()
    assert len(set(eager_returns.tolist())) > 1  # six episodes, not one replayed


@pytest.mark.parametrize("backend", ["gymnasium", "torch"])  # (the torch env's step compiled too)
def test_a_compiled_run_resumed_from_its_checkpoint_ends_where_an_unbroken_one_ends(tmp_path, backend):
    settings = {**PPO_SETTINGS, "steps": 180, "checkpoint_every": 60, "compile": True, "backend": backend}
    unbroken = PPO.from_env("CartPole-v1", **settings).learn(run_dir=tmp_path / "unbroken", progress=False)
    payload = crash_and_checkpoint(PPO.from_env("CartPole-v1", **settings), 120, tmp_path / "crashed")
    assert payload["runner"]["step"] == 120
    resumed = resume(payload, tmp_path / "crashed")
    assert_same_state(resumed, unbroken, atol=0)

"""``TracedGraphs``: one inductor graph per signature of a function's inputs, no TorchDynamo."""
import pytest
import torch
from torch import nn

from agents.compilation import inductor_options
from agents.traced_graphs import ModuleCall, TracedGraphs, call_with_tensors
from replay import Batch

CPU = inductor_options("default", torch.device("cpu"))


def scaled_step(state: dict, batch: Batch, scale: float, square: bool):
    """Mutates ``state`` in place and returns a nesting of tensors and None."""
    state["count"].add_(1)
    value = batch.obs.square() if square else batch.obs
    return {"total": (value * scale).sum(-1), "mean": value.mean()}, (batch.action + state["count"], None)


def inputs(rows: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return ({"count": torch.zeros(())},
            Batch(obs=torch.randn(rows, 3, generator=generator), action=torch.randn(rows, generator=generator)))


def test_a_traced_function_computes_what_it_computes_eagerly_and_mutates_its_inputs_alike():
    traced = TracedGraphs(scaled_step, CPU)
    for call in range(3):
        (eager_state, batch), (traced_state, _) = inputs(5, seed=call), inputs(5, seed=call)
        eager_state["count"].fill_(call)
        traced_state["count"].fill_(call)
        expected = scaled_step(eager_state, batch, 2.0, True)
        result = traced(traced_state, batch, 2.0, True)
        torch.testing.assert_close(result[0], expected[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(result[1][0], expected[1][0], atol=0, rtol=0)
        assert result[1][1] is None
        assert traced_state["count"].item() == eager_state["count"].item() == call + 1
    assert len(traced.graphs) == 1


def test_each_new_signature_compiles_a_graph_and_a_known_one_reuses_its_own():
    traced = TracedGraphs(scaled_step, CPU)
    compiled_before = TracedGraphs.compiled
    traced(*inputs(5), 2.0, True)
    traced(*inputs(4), 2.0, True)  # another batch size
    traced(*inputs(5), 3.0, True)  # another constant
    traced(*inputs(5), 2.0, False)
    state, batch = inputs(5)
    traced(state, Batch(obs=batch.obs.t().contiguous().t(), action=batch.action), 2.0, True)  # other strides
    assert len(traced.graphs) == 5 and TracedGraphs.compiled - compiled_before == 5
    for rows, scale, square in ((4, 2.0, True), (5, 3.0, True), (5, 2.0, False)):
        state, batch = inputs(rows, seed=7)
        result = traced(state, batch, scale, square)
        expected = scaled_step(*inputs(rows, seed=7), scale, square)
        torch.testing.assert_close(result[0], expected[0], atol=1e-6, rtol=0)
    assert len(traced.graphs) == 5


def test_a_module_call_reads_the_parameters_it_is_given_each_call():
    layer = nn.Linear(3, 2)
    traced = TracedGraphs(lambda parameters, x: torch.func.functional_call(ModuleCall(layer, nn.Linear.forward),
                                                                           parameters, (x,)), CPU)
    x = torch.randn(4, 3)
    parameters = {f"module.{name}": p.detach() for name, p in layer.named_parameters()}
    torch.testing.assert_close(traced(parameters, x), layer(x).detach())
    with torch.no_grad():
        layer.weight.mul_(-2.0)  # in place, as optimisers step
    torch.testing.assert_close(traced(parameters, x), layer(x).detach())
    assert len(traced.graphs) == 1


def test_a_submodule_registered_under_two_names_gets_its_own_parameters_back():
    """As SAC's encoder, which is also its critics': the given tensors replace it under both
    names during the call, and the module's own parameters are back afterwards."""
    encoder = nn.Linear(3, 2)
    owner = nn.Module()
    owner.encoder, owner.critic = encoder, nn.Sequential(encoder, nn.ReLU())
    own = dict(owner.named_parameters())
    zeros = {f"module.{name}": torch.zeros_like(p) for name, p in own.items()}
    out = call_with_tensors(ModuleCall(owner, lambda module, x: module.critic(x)), zeros, (torch.randn(4, 3),))
    torch.testing.assert_close(out, torch.zeros(4, 2))
    assert list(own) == ["encoder.weight", "encoder.bias"]
    assert owner.critic[0].weight is own["encoder.weight"] and owner.encoder.bias is own["encoder.bias"]


def test_bound_arguments_come_first_and_each_call_reads_their_values():
    """``bound`` tensors (an agent's parameters) are left out of each call's signature, not out of
    the graph: it reads their values of the call."""
    weight = torch.ones(3)
    traced = TracedGraphs(lambda bound, x, scale: bound["w"] * x * scale, CPU, bound=({"w": weight},))
    x = torch.arange(3.0)
    torch.testing.assert_close(traced(x, 2.0), 2 * x)
    with torch.no_grad():
        weight.mul_(-3.0)  # in place, as optimisers step
    torch.testing.assert_close(traced(x, 2.0), -6 * x)
    assert len(traced.graphs) == 1
    rows = torch.stack([x, x + 1])
    torch.testing.assert_close(traced(rows, 2.0), -6 * rows)  # a call's own signature still counts
    assert len(traced.graphs) == 2


def test_a_function_reading_a_tensor_outside_its_arguments_is_refused_and_a_fresh_one_is_kept():
    for table in (torch.arange(3.0), torch.tensor(2.0)):
        with pytest.raises(ValueError, match="reads a tensor that is not among its arguments"):
            TracedGraphs(lambda x: x + table, CPU)(torch.ones(3))
    torch.testing.assert_close(TracedGraphs(lambda x: x + torch.tensor(0.5), CPU)(torch.ones(3)), torch.full((3,), 1.5))


def test_the_whole_steps_gradient_is_autograds_in_the_flat_layout_channels_last_weights_included():
    """``Agent.whole_gradient_step`` (here run eagerly) differentiates with respect to the
    parameters' views and joins their gradients as the flat parameter stores them: a Nature
    CNN's channels-last conv weights, too."""
    from gymnasium import spaces

    from agents import PPO
    from agents.base import Agent
    from agents.traced_graphs import ModuleCall

    generator = torch.Generator().manual_seed(0)
    observation_space = spaces.Box(0, 255, (4, 44, 44), dtype="uint8")
    agent = PPO(PPO.config_class(env="ALE/Pong-v5", encoder="nature", num_envs=1), observation_space,
                spaces.Discrete(3))
    assert any(p.dim() == 4 and not p.is_contiguous() for p in agent.parameters())  # channels-last
    batch = Batch(obs=torch.randint(0, 256, (6, 4, 44, 44), generator=generator, dtype=torch.uint8),
                  action=torch.randint(0, 3, (6,), generator=generator),
                  log_prob=torch.randn(6, generator=generator) - 1, value=torch.randn(6, generator=generator),
                  advantage=torch.randn(6, generator=generator), returns=torch.randn(6, generator=generator))
    clip = torch.tensor(0.2)
    flat = agent.optimizer.flat_parameters
    flat.zero_grad()
    agent.loss(batch, clip)[0].backward()
    captured = {}

    def capture(parameter, grad, grad_scale, state, lr):
        captured["grad"], captured["grad_scale"] = grad, grad_scale

    for max_grad_norm in (0.0, 0.5):
        Agent.whole_gradient_step(ModuleCall(agent, type(agent).loss), agent._flat_layout(flat.parameter),
                                  flat.parameter.detach(), agent._tensors_outside(flat.parameter), capture, {},
                                  torch.tensor(1.0), (), max_grad_norm, (batch, clip))
        torch.testing.assert_close(captured["grad"], flat.grad, rtol=1e-5, atol=1e-7)
        if max_grad_norm == 0.0:  # no clipping
            assert captured["grad_scale"] is None
        else:  # clip_grad_norm_'s factor
            assert 0.0 < captured["grad_scale"] < 1.0
            torch.testing.assert_close(captured["grad_scale"], 0.5 / (flat.grad.norm() + 1e-6), rtol=1e-5, atol=0)


def test_large_linear_products_in_a_graph_are_calls_of_onednn_with_their_gradients():
    """``representation.linear`` routes large products to oneDNN under the trace too; the graph
    calls the op (inductor's own lowering of it would refuse weights that are inputs), forward
    and in the gradient, and computes what eager oneDNN and autograd compute."""
    from torch.profiler import profile

    from representation.linear import ONEDNN_AVAILABLE, _onednn_product, affine

    if not ONEDNN_AVAILABLE:
        pytest.skip("this PyTorch build has no oneDNN")
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(2048, 256, generator=generator), torch.randn(256, 256, generator=generator) / 16,
                       torch.randn(256, generator=generator))

    def values_and_gradients(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor):
        gradients = torch.func.grad(lambda w, b: affine(x, w, b).square().sum(), argnums=(0, 1))(weight, bias)
        return affine(x, weight, bias), gradients

    traced = TracedGraphs(values_and_gradients, CPU)
    traced(weight, bias, x)
    with profile() as calls:
        y, (grad_weight, grad_bias) = traced(weight, bias, x)
    assert "mkldnn::_linear_pointwise" in {event.key for event in calls.key_averages()}
    assert torch.equal(y, _onednn_product(x, weight, bias))
    leaf_weight, leaf_bias = weight.clone().requires_grad_(), bias.clone().requires_grad_()
    nn.functional.linear(x, leaf_weight, leaf_bias).square().sum().backward()
    torch.testing.assert_close(grad_weight, leaf_weight.grad, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(grad_bias, leaf_bias.grad, rtol=1e-4, atol=1e-2)


def test_a_flat_parameter_holding_more_than_the_agents_parameters_is_refused():
    """The whole step joins the parameters' gradients into one flat gradient: that needs the
    agent's parameters to tile the flat tensor exactly."""
    from agents import PPO
    from agents.flat_parameters import FlatParameters

    agent = PPO.from_env("CartPole-v1", num_envs=1)
    layout = agent._flat_layout(agent.optimizer.flat_parameters.parameter)
    assert sum(shape.numel() for _, shape, _, _ in layout) == agent.optimizer.flat_parameters.parameter.numel()
    stranger = nn.Parameter(torch.zeros(3))
    wider = FlatParameters([*agent.parameters(), stranger])
    with pytest.raises(ValueError, match="do not tile"):
        agent._flat_layout(wider.parameter)

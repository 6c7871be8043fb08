"""The hand-written backward of a stacked ReLU MLP, of DQN's Huber TD loss and of SAC's actor
loss (palr.batched.stacked_backward, palr.batched.sac_actor_grad) against autograd through
StackedMLP.forward."""
import pytest
import torch
import torch.nn.functional as F

from palr.agents.sac import tanh_gaussian
from palr.batched.sac_actor_grad import min_grad, tanh_gaussian_grad
from palr.batched import stacked_backward
from palr.batched.stacked_backward import (Scratch, backward_into, forward_keeping_inputs,
                                           huber_td_grad, input_grad, row_blocks)
from palr.batched.stacked_mlp import StackedMLP


def _random_mlp(sizes, members, seed):
    """A StackedMLP with random weights in which a third of every hidden layer's units (a
    different third per member) is dead: zero incoming weights and a negative bias."""
    gen = torch.Generator().manual_seed(seed)
    mlp = StackedMLP(sizes, members)
    with torch.no_grad():
        mlp.params.copy_(torch.randn(mlp.params.shape, generator=gen) * 0.5)
        for layer in range(mlp.num_layers - 1):
            weight, bias = mlp.layer_views(mlp.params, layer)
            for k in range(members):
                dead = torch.randperm(sizes[layer + 1], generator=gen)[:sizes[layer + 1] // 3]
                weight[k, dead] = 0.0
                bias[k, dead] = -1.0
    return mlp, gen


@pytest.mark.filterwarnings("ignore:grad and param do not obey the gradient layout")
@pytest.mark.parametrize("sizes, members, batch", [
    ((4, 128, 128, 2), 1, 32), ((4, 128, 128, 2), 5, 128), ((6, 16, 3), 3, 7),
    ((3, 64, 32, 32, 5), 10, 16)])
def test_hand_written_gradients_equal_autograd(sizes, members, batch):
    mlp, gen = _random_mlp(sizes, members, seed=sum(sizes) + members)
    x = torch.randn(members, batch, sizes[0], generator=gen)
    actions = torch.randint(sizes[-1], (members, batch), generator=gen)
    td_target = torch.randn(members, batch, generator=gen) * 2.0  # both sides of beta
    beta = 1.0

    mlp.grad.zero_()
    q_auto = mlp(x)
    q_pred_auto = q_auto.gather(2, actions.unsqueeze(2)).squeeze(2)
    F.smooth_l1_loss(q_pred_auto, td_target, beta=beta, reduction="none").mean(dim=1).sum() \
        .backward()
    expected = mlp.grad.clone()

    hidden = forward_keeping_inputs(mlp, x, mlp.operands(mlp.params))[1][1:]
    assert all(bool((h == 0).all(dim=1).any()) for h in hidden)  # dead units are present
    assert any(bool((h == 0).any(dim=1).logical_and((h > 0).any(dim=1)).any())
               for h in hidden)  # and units active on some inputs only

    scratch = Scratch()  # reused: the second pass must not be disturbed by the first's tensors
    for _ in range(2):
        with torch.no_grad():
            mlp.grad.fill_(123.0)  # stale values: every layer's columns must be overwritten
        q, inputs = forward_keeping_inputs(mlp, x, mlp.operands(mlp.params), scratch)
        torch.testing.assert_close(q, q_auto.detach(), rtol=0, atol=1e-6)
        q_pred = q.gather(2, actions.unsqueeze(2)).squeeze(2)
        grad_q = huber_td_grad(q, actions, q_pred, td_target, beta)
        backward_into(mlp, mlp.params, inputs, grad_q, mlp.grad, scratch)
        used = mlp.spans[-1][1].stop  # the row's padding is not a layer's: left as it was
        torch.testing.assert_close(mlp.grad[:, :used], expected[:, :used], rtol=0, atol=1e-6)
    with_scratch = mlp.grad.clone()
    q, inputs = forward_keeping_inputs(mlp, x, mlp.operands(mlp.params))  # fresh tensors
    backward_into(mlp, mlp.params, inputs, huber_td_grad(q, actions, q_pred, td_target, beta),
                  mlp.grad)
    assert torch.equal(mlp.grad, with_scratch)
    assert bool((mlp.grad[:, used:] == 123.0).all())
    dead_rows = [(w == 0).all(dim=2) for w, _ in
                 (mlp.layer_views(mlp.params, layer) for layer in range(mlp.num_layers - 1))]
    for layer, dead in enumerate(dead_rows):  # a dead unit gets no gradient into its weights
        weight_grad, bias_grad = mlp.layer_views(mlp.grad, layer)
        assert bool((weight_grad[dead] == 0).all()) and bool((bias_grad[dead] == 0).all())
    assert bool(mlp.grad[:, :used].abs().sum(dim=1).gt(0).all())  # every member has a gradient


def test_huber_gradient_is_the_clipped_error_over_the_batch_at_the_taken_action():
    q = torch.zeros(2, 4, 3)
    actions = torch.tensor([[0, 1, 2, 2], [1, 1, 0, 0]])
    q_pred = torch.tensor([[0.5, -3.0, 2.0, 0.0], [0.25, 10.0, -0.5, 1.0]])
    td_target = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    grad = huber_td_grad(q, actions, q_pred, td_target, beta=2.0)
    expected = torch.zeros(2, 4, 3)
    errors = [[0.25, -1.0, 1.0, 0.0], [0.125, 1.0, -0.25, -1.0]]  # clamp((q - y) / beta)
    for k in range(2):
        for i in range(4):
            expected[k, i, actions[k, i]] = errors[k][i] / 4
    assert torch.equal(grad, expected)


def _fan_in_scaled(mlp):
    """``mlp`` with every layer's weights divided by sqrt(fan_in) / 2 (std 1 / sqrt(fan_in),
    as a trained network's order of magnitude; dead units stay dead): outputs and gradients
    of order 1 at any width, so an absolute tolerance means the same for every size."""
    with torch.no_grad():
        for layer in range(mlp.num_layers):
            mlp.layer_views(mlp.params, layer)[0].mul_(2.0 / mlp.sizes[layer] ** 0.5)
    return mlp


@pytest.mark.parametrize("obs_dim, act_dim, hidden, members, batch, per_sample_alpha", [
    (39, 4, (256, 256), 5, 128, False), (5, 2, (16, 16, 16), 1, 7, True),
    (11, 3, (32, 64), 3, 16, False), (8, 1, (24,), 10, 9, True)])
def test_hand_written_actor_gradient_equals_autograd(obs_dim, act_dim, hidden, members, batch,
                                                     per_sample_alpha):
    """SAC's actor step by hand (tanh-Gaussian sample, min of the twin critics' input
    gradient) gives autograd's actor gradient, with dead units, clamped log-stds and a tie."""
    actor, gen = _random_mlp((obs_dim,) + hidden + (2 * act_dim,), members, seed=obs_dim)
    critic = _fan_in_scaled(_random_mlp((obs_dim + act_dim,) + hidden + (1,), 2 * members,
                                        seed=act_dim)[0])
    _fan_in_scaled(actor)
    with torch.no_grad():
        critic.params[1] = critic.params[0]  # member 0's critics agree: a tie on every sample
    obs = torch.randn(members, batch, obs_dim, generator=gen)
    noise = torch.randn(members, batch, act_dim, generator=gen)
    alpha = torch.rand((members, batch if per_sample_alpha else 1), generator=gen) + 0.1
    low, high = -0.5, 0.3  # narrow: raw log-stds fall below, inside and above the clamp

    def critic_input(pi):
        return torch.cat([obs, pi], dim=-1).repeat_interleave(2, dim=0)

    actor.grad.zero_()
    mean, raw_log_std = actor(obs).chunk(2, dim=-1)
    pi, logp = tanh_gaussian(mean, raw_log_std.clamp(low, high), noise)
    q = critic(critic_input(pi)).view(members, 2, batch)
    loss = (alpha * logp - torch.min(q[:, 0], q[:, 1])).mean(dim=1).sum()
    expected = torch.autograd.grad(loss, actor.leaves())
    clamped = (raw_log_std < low).logical_or(raw_log_std > high)
    assert bool(clamped.any()) and not bool(clamped.all())

    scratch = Scratch()
    for _ in range(2):  # the second pass reuses the scratch tensors
        with torch.no_grad():
            actor.grad.fill_(123.0)
        out, actor_inputs = forward_keeping_inputs(actor, obs, actor.operands(actor.params),
                                                   scratch)
        h_mean, h_raw = out.chunk(2, dim=-1)
        h_pi, h_logp = tanh_gaussian(h_mean, h_raw.clamp(low, high), noise)
        q_out, critic_inputs = forward_keeping_inputs(critic, critic_input(h_pi),
                                                      critic.operands(critic.params))
        grad_q = min_grad(q_out.view(members, 2, batch), -1.0 / batch)
        assert bool((grad_q[0] == -0.5 / batch).all())  # the tie: half to each critic
        grad_pi = input_grad(critic, critic.params, critic_inputs, grad_q.view_as(q_out),
                             slice(obs_dim, None), Scratch())
        grad_out = tanh_gaussian_grad(h_raw, noise, h_pi, grad_pi.view(
            members, 2, batch, act_dim).sum(dim=1), alpha / batch, low, high)
        backward_into(actor, actor.params, actor_inputs, grad_out, actor.grad, scratch)
        got = [view for layer in range(actor.num_layers)
               for view in actor.layer_views(actor.grad, layer)]
        got = got[0::2] + got[1::2]  # the order of actor.leaves(): weights, then biases
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=0, atol=1e-6)
    assert bool(actor.grad.abs().sum(dim=1).gt(0).all())  # every member has a gradient


@pytest.mark.parametrize("sizes, members, columns", [
    ((43, 64, 64, 1), 4, slice(39, None)), ((6, 16, 3), 3, slice(None)), ((5, 8, 2), 1, slice(1, 3))])
def test_input_gradient_equals_autograd_and_leaves_the_parameter_gradient(sizes, members,
                                                                          columns):
    mlp, gen = _random_mlp(sizes, members, seed=sum(sizes))
    _fan_in_scaled(mlp)
    x = torch.randn(members, 9, sizes[0], generator=gen, requires_grad=True)
    weights = torch.randn(members, 9, sizes[-1], generator=gen)
    (mlp(x) * weights).sum().backward(inputs=[x])
    with torch.no_grad():
        mlp.grad.fill_(7.0)
    _, inputs = forward_keeping_inputs(mlp, x.detach(), mlp.operands(mlp.params))
    got = input_grad(mlp, mlp.params, inputs, weights, columns)
    torch.testing.assert_close(got, x.grad[:, :, columns], rtol=0, atol=1e-6)
    assert bool((mlp.grad == 7.0).all())  # no parameter gradient is written


@pytest.mark.parametrize("block_rows", [1, 2, 3])
def test_member_blocks_compute_what_one_block_does(monkeypatch, block_rows):
    """Large batches are computed a block of members at a time (row_blocks): the forward, the
    parameter gradient and the input gradient are those of one block of all members."""
    sizes, members, batch = (7, 32, 24, 3), 5, 16
    mlp, gen = _random_mlp(sizes, members, seed=block_rows)
    _fan_in_scaled(mlp)
    x = torch.randn(members, batch, sizes[0], generator=gen)
    grad_q = torch.randn(members, batch, sizes[-1], generator=gen)

    def run():
        with torch.no_grad():
            mlp.grad.fill_(123.0)  # every row must be written
        q, inputs = forward_keeping_inputs(mlp, x, mlp.operands(mlp.params), Scratch())
        backward_into(mlp, mlp.params, inputs, grad_q, mlp.grad, Scratch())
        return q.clone(), mlp.grad.clone(), input_grad(mlp, mlp.params, inputs, grad_q)

    assert row_blocks(mlp, x) == [slice(0, members)]
    whole = run()
    monkeypatch.setattr(stacked_backward, "BLOCK_BYTES", block_rows * batch * 32 * 4)
    blocks = row_blocks(mlp, x)
    assert len(blocks) == -(-members // block_rows) and blocks[-1].stop == members
    for got, expected in zip(run(), whole):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)

"""The hand-written backward of a stacked ReLU MLP and of DQN's Huber TD loss
(palr.batched.stacked_backward) against autograd through StackedMLP.forward."""
import pytest
import torch
import torch.nn.functional as F

from palr.batched.stacked_backward import (Scratch, backward_into, forward_keeping_inputs,
                                           huber_td_grad)
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

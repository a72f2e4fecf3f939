"""Adagrad (Duchi et al., 2011), with learning-rate decay, as PyTorch's
``_single_tensor_adagrad``."""
from ..factory import full, tensor
from ._functional import addcdiv_, addcmul_, scalar
from .optimizer import Optimizer, _check_differentiable, _step_without_grad


class Adagrad(Optimizer):
    """For each parameter p with gradient g, at step t:

        g <- g + weight_decay p
        s <- s + g^2                    (s starts at initial_accumulator_value)
        p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError("Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_differentiable(differentiable)
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:       # Adagrad's state exists from the start
            for p in group["params"]:
                self.state[p]["step"] = tensor(0.0)
                self.state[p]["sum"] = full(tuple(p.shape), initial_accumulator_value,
                                            dtype=p.dtype)

    @_step_without_grad
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, self.state[p], group)

    @staticmethod
    def _update(p, state, group):
        grad = -p.grad if group["maximize"] else p.grad
        state["step"].add_(1)
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        clr = scalar(group["lr"]) / (1 + (scalar(state["step"]) - 1) * group["lr_decay"])
        addcmul_(state["sum"], grad, grad, value=1)
        std = state["sum"].sqrt().add_(group["eps"])
        addcdiv_(p, grad, std, value=-clr)

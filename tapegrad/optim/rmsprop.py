"""RMSprop (Hinton), centered or not, with momentum, as PyTorch's
``_single_tensor_rmsprop``."""
from ..factory import tensor, zeros_like
from ._functional import addcdiv_, addcmul_, lerp_
from .optimizer import Optimizer, _check_differentiable, _step_without_grad


class RMSprop(Optimizer):
    """For each parameter p with gradient g:

        g <- g + weight_decay p
        v <- alpha v + (1 - alpha) g^2
        a <- sqrt(v) + eps, or sqrt(v - gbar^2) + eps with gbar <- alpha gbar + (1 - alpha) g
             (centered)
        b <- momentum b + g / a; p <- p - lr b     (momentum > 0)
        p <- p - lr g / a                          (otherwise)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _check_differentiable(differentiable)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay,
                    "capturable": capturable, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _state(self, p, group):
        state = self.state[p]
        if not state:
            state["step"] = tensor(0.0)
            state["square_avg"] = zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = zeros_like(p)
        return state

    @_step_without_grad
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, self._state(p, group), group)

    @staticmethod
    def _update(p, state, group):
        alpha, lr = group["alpha"], group["lr"]
        grad = -p.grad if group["maximize"] else p.grad
        square_avg = state["square_avg"]
        state["step"].add_(1)
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        addcmul_(square_avg.mul_(alpha), grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            addcdiv_(buf.mul_(group["momentum"]), grad, avg)
            p.add_(buf, alpha=-lr)
        else:
            addcdiv_(p, grad, avg, value=-lr)

"""The authors' architect.py (DARTS / PC-DARTS) for the PyTorch models of bench/pytorch/:
first order (unrolled=False) and the second-order unrolled step (unrolled=True), written as
theirs: the virtual model w' is a copy of the network (its parameters set from theta, its
buffers the network's current ones), the Hessian-vector product perturbs the network's own
parameters in place.

Two changes, both only where the authors' code would crash: an architecture tensor the loss
does not use (betas without edge normalisation) has no gradient, as in PyTorch's first order
(autograd.grad with allow_unused, and the tensor is left without .grad, so Adam skips it);
`arch_grad_clip` clips the combined architecture gradient before the Adam step (the ImageNet
recipe, spec section 6).
"""
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F


def _concat(xs):
    return torch.cat([x.reshape(-1) for x in xs])


class Architect:
    def __init__(self, model, momentum, weight_decay, arch_lr, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3,
                 arch_grad_clip=None):
        self.network_momentum = momentum
        self.network_weight_decay = weight_decay
        self.model = model
        self.arch_grad_clip = arch_grad_clip
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=arch_lr, betas=tuple(arch_betas), weight_decay=arch_weight_decay)

    def _loss(self, model, x, target):
        return F.cross_entropy(model(x), target)

    def step(self, input_train, target_train, input_valid, target_valid, eta, network_optimizer, unrolled):
        self.optimizer.zero_grad()
        if unrolled:
            self._backward_step_unrolled(input_train, target_train, input_valid, target_valid, eta, network_optimizer)
        else:
            self._loss(self.model, input_valid, target_valid).backward()
        if self.arch_grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.arch_parameters(), self.arch_grad_clip)
        self.optimizer.step()

    def _compute_unrolled_model(self, x, target, eta, network_optimizer):
        loss = self._loss(self.model, x, target)
        params = list(self.model.parameters())
        theta = _concat(params).data
        try:
            moment = _concat(network_optimizer.state[v]['momentum_buffer'] for v in params).mul_(self.network_momentum)
        except KeyError:
            moment = torch.zeros_like(theta)
        dtheta = _concat(torch.autograd.grad(loss, params)).data + self.network_weight_decay * theta
        return self._construct_model_from_theta(theta.sub(moment + dtheta, alpha=eta))

    def _construct_model_from_theta(self, theta):
        model_new = copy.deepcopy(self.model)  # the authors' model.new() + load_state_dict(state_dict): same buffers and arch values
        for name, _ in model_new.named_arch_parameters():
            setattr(model_new, name, getattr(self.model, name).detach().clone().requires_grad_(True))
        offset = 0
        with torch.no_grad():
            for p in model_new.parameters():
                n = p.numel()
                p.copy_(theta[offset:offset + n].view(p.size()))
                offset += n
        assert offset == len(theta)
        return model_new

    def _backward_step_unrolled(self, input_train, target_train, input_valid, target_valid, eta, network_optimizer):
        unrolled_model = self._compute_unrolled_model(input_train, target_train, eta, network_optimizer)
        unrolled_loss = self._loss(unrolled_model, input_valid, target_valid)
        unrolled_loss.backward()
        dalpha = [v.grad for v in unrolled_model.arch_parameters()]
        vector = [v.grad.data for v in unrolled_model.parameters()]
        implicit_grads = self._hessian_vector_product(vector, input_train, target_train)
        for g, ig in zip(dalpha, implicit_grads):
            if g is not None:
                g.data.sub_(ig.data, alpha=eta)
        for v, g in zip(self.model.arch_parameters(), dalpha):
            v.grad = None if g is None else g.data.clone()

    def _hessian_vector_product(self, vector, x, target, r=1e-2):
        R = r / _concat(vector).norm()
        arch = self.model.arch_parameters()
        params = list(self.model.parameters())
        for p, v in zip(params, vector):
            p.data.add_(R * v)
        grads_p = torch.autograd.grad(self._loss(self.model, x, target), arch, allow_unused=True)
        for p, v in zip(params, vector):
            p.data.sub_(2 * R * v)
        grads_n = torch.autograd.grad(self._loss(self.model, x, target), arch, allow_unused=True)
        for p, v in zip(params, vector):
            p.data.add_(R * v)
        return [None if a is None else (a - b).div_(2 * R) for a, b in zip(grads_p, grads_n)]

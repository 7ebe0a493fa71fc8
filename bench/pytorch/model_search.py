"""PC-DARTS operations and search network in PyTorch, written from /work/shared/spec/pcdarts.md
(sections 1-4), with the module tree (hence the state-dict keys) of the authors' code:
`stem.0.weight`, `cells.3._ops.7._ops.4.op.1.weight`, `cells.2.preprocess0.conv_1.weight`,
`classifier.bias`, ...

This is the PyTorch side of `npm run bench -- search` (bench/pytorch/search.py) and of the
fixture check (bench/pytorch/check_fixtures.py); bench/pytorch/model_eval.py builds the
retraining network from the same operations.

Differences from the authors' code, all from the spec:
- K (channel proportion 1/K) is a parameter (theirs is fixed at 4). K=1 has no bypass tensor and
  no shuffle (their code crashes there).
- Edge normalisation can be switched off (every beta weight 1).
- in_channels is a parameter (3 for CIFAR, 1 for Fashion-MNIST).
- network='imagenet' builds the stems of their model_search_imagenet.py (stem0: conv 3x3 s2 ->
  3C/2, BN, ReLU, conv 3x3 s2 -> 3C, BN; stem1: ReLU, conv 3x3 s2, BN; the first cell reduces
  stem0's output) with the same cells, any K (theirs: K=2), and every MixedOp evaluated once
  per forward (theirs twice, which moves batch-norm statistics twice; spec section 6).
Everything else (order of operations, which tensors autograd records, in-place-free forward)
follows their model_search.py, so time and memory are what their search script spends.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

PRIMITIVES = [
    'none',
    'max_pool_3x3',
    'avg_pool_3x3',
    'skip_connect',
    'sep_conv_3x3',
    'sep_conv_5x5',
    'dil_conv_3x3',
    'dil_conv_5x5',
]


# ---------------------------------------------------------------------------------------
# Operations (the authors' operations.py, spec section 1)

class ReLUConvBN(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.)
        return x[:, :, ::self.stride, ::self.stride].mul(0.)


class FactorizedReduce(nn.Module):
    def __init__(self, C_in, C_out, affine=True):
        super().__init__()
        assert C_out % 2 == 0, f'FactorizedReduce: C_out must be even, got {C_out}'
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        if x.shape[2] % 2 != 0 or x.shape[3] % 2 != 0:
            raise ValueError(f'FactorizedReduce: odd spatial size {x.shape[2]}x{x.shape[3]}')
        x = self.relu(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


OPS = {
    'none': lambda C, stride, affine: Zero(stride),
    'avg_pool_3x3': lambda C, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    'max_pool_3x3': lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    'skip_connect': lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine),
    'sep_conv_3x3': lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    'sep_conv_5x5': lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    'dil_conv_3x3': lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    'dil_conv_5x5': lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
}


# ---------------------------------------------------------------------------------------
# Partial-channel MixedOp (spec section 2)

def channel_shuffle(x, groups):
    batch, channels, height, width = x.shape
    per_group = channels // groups
    x = x.view(batch, groups, per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batch, -1, height, width)


class MixedOp(nn.Module):
    def __init__(self, C, stride, k=4):
        super().__init__()
        if C % k != 0:
            raise ValueError(f'MixedOp: C={C} is not divisible by K={k}')
        self._ops = nn.ModuleList()
        self.mp = nn.MaxPool2d(2, 2)
        self.k = k
        for primitive in PRIMITIVES:
            op = OPS[primitive](C // k, stride, False)
            if 'pool' in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(C // k, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        if self.k == 1:
            return sum(w * op(x) for w, op in zip(weights, self._ops))
        dim_2 = x.shape[1]
        xtemp = x[:, :dim_2 // self.k, :, :]
        xtemp2 = x[:, dim_2 // self.k:, :, :]
        temp1 = sum(w * op(xtemp) for w, op in zip(weights, self._ops))
        # reducing edges max-pool the bypass before the concat
        if temp1.shape[2] == x.shape[2]:
            ans = torch.cat([temp1, xtemp2], dim=1)
        else:
            ans = torch.cat([temp1, self.mp(xtemp2)], dim=1)
        return channel_shuffle(ans, self.k)


# ---------------------------------------------------------------------------------------
# Search cell with edge normalisation (spec section 3) and network (spec section 4)

class Cell(nn.Module):
    def __init__(self, steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev, k=4):
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self._steps = steps
        self._multiplier = multiplier
        self._ops = nn.ModuleList()
        for i in range(self._steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(MixedOp(C, stride, k))

    def forward(self, s0, s1, weights, weights2):
        s0 = self.preprocess0(s0)
        s1 = self.preprocess1(s1)
        states = [s0, s1]
        offset = 0
        for _ in range(self._steps):
            if weights2 is None:
                s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            else:
                s = sum(weights2[offset + j] * self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


def edge_count(steps):
    return sum(2 + i for i in range(steps))


class Network(nn.Module):
    """The search network. alphas/betas are plain leaf tensors (not module parameters), as in
    the authors' code: model.parameters() is what SGD trains, arch_parameters() what Adam does."""

    def __init__(self, C, num_classes, layers, steps=4, multiplier=4, stem_multiplier=3, k=4,
                 in_channels=3, edge_normalization=True, network='cifar'):
        super().__init__()
        self._C = C
        self._num_classes = num_classes
        self._layers = layers
        self._steps = steps
        self._multiplier = multiplier
        self._k = k
        self._edge_normalization = edge_normalization

        self._network = network
        C_curr = stem_multiplier * C
        if network == 'imagenet':
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, C_curr // 2, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(C_curr // 2),
                nn.ReLU(inplace=False),
                nn.Conv2d(C_curr // 2, C_curr, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(C_curr),
            )
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=False),
                nn.Conv2d(C_curr, C_curr, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(C_curr),
            )
        elif network == 'cifar':
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False),
                nn.BatchNorm2d(C_curr),
            )
        else:
            raise ValueError(f'network must be cifar or imagenet, got {network!r}')
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = network == 'imagenet'
        for i in range(layers):
            if i in [layers // 3, 2 * layers // 3]:
                C_curr *= 2
                reduction = True
            else:
                reduction = False
            cell = Cell(steps, multiplier, C_prev_prev, C_prev, C_curr, reduction, reduction_prev, k)
            reduction_prev = reduction
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        self._initialize_alphas()

    def _initialize_alphas(self):
        edges = edge_count(self._steps)
        num_ops = len(PRIMITIVES)
        self.alphas_normal = (1e-3 * torch.randn(edges, num_ops)).requires_grad_(True)
        self.alphas_reduce = (1e-3 * torch.randn(edges, num_ops)).requires_grad_(True)
        self.betas_normal = (1e-3 * torch.randn(edges)).requires_grad_(True)
        self.betas_reduce = (1e-3 * torch.randn(edges)).requires_grad_(True)

    def named_arch_parameters(self):
        return [('alphas_normal', self.alphas_normal), ('alphas_reduce', self.alphas_reduce),
                ('betas_normal', self.betas_normal), ('betas_reduce', self.betas_reduce)]

    def arch_parameters(self):
        return [t for _, t in self.named_arch_parameters()]

    def _beta_weights(self, betas):
        """softmax over each node's own inputs: segments of length 2, 3, ..., steps + 1."""
        parts = []
        start = 0
        for n in range(2, self._steps + 2):
            parts.append(F.softmax(betas[start:start + n], dim=-1))
            start += n
        return torch.cat(parts, dim=0)

    def forward(self, x):
        if self._network == 'imagenet':
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        for cell in self.cells:
            if cell.reduction:
                weights = F.softmax(self.alphas_reduce, dim=-1)
                weights2 = self._beta_weights(self.betas_reduce) if self._edge_normalization else None
            else:
                weights = F.softmax(self.alphas_normal, dim=-1)
                weights2 = self._beta_weights(self.betas_normal) if self._edge_normalization else None
            s0, s1 = s1, cell(s0, s1, weights, weights2)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))

    def genotype(self):
        """Spec section 5, in float32: JSON form {normal, normal_concat, reduce, reduce_concat}."""
        def parse(alphas, betas):
            w = F.softmax(alphas.detach().float(), dim=-1)
            b = self._beta_weights(betas.detach().float()) if self._edge_normalization else torch.ones(alphas.shape[0])
            gene = []
            start = 0
            n = 2
            none = PRIMITIVES.index('none')
            for _ in range(self._steps):
                W = (w[start:start + n] * b[start:start + n, None]).tolist()
                # float32 products compared as Python floats: the values are exact float32s
                best = []
                for j in range(n):
                    k_best = max((k for k in range(len(W[j])) if k != none), key=lambda k: (W[j][k], -k))
                    best.append((W[j][k_best], j, k_best))
                ranked = sorted(range(n), key=lambda j: -best[j][0])  # stable: lower edge first on ties
                for j in ranked[:2]:
                    gene.append([PRIMITIVES[best[j][2]], j])
                start += n
                n += 1
            return gene

        concat = list(range(2 + self._steps - self._multiplier, self._steps + 2))
        return {
            'normal': parse(self.alphas_normal, self.betas_normal), 'normal_concat': concat,
            'reduce': parse(self.alphas_reduce, self.betas_reduce), 'reduce_concat': concat,
        }

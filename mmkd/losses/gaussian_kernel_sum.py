"""sum_ij exp(-||a_i - b_j||^2 / (2 sigma^2)) per sample without storing the kernel matrix.

The NST Gaussian MMD needs the sums of three kernel matrices (C_S x C_S, C_T x C_T, C_S x C_T per
sample: 7.3 M entries at the paper's tap). Written with tensor ops, autograd keeps each matrix and
its intermediates for the backward pass (1.8 GB at batch 32) and every elementwise step is a pass
over memory. Here the matrices are made in blocks of rows, summed and dropped; the backward pass
makes each block again and uses

    d/da_i sum_j K_ij = -(1 / sigma^2) (a_i sum_j K'_ij - sum_j K'_ij b_j)   (and likewise for b_j),

where K'_ij = K_ij where the squared distance d_ij = |a_i|^2 + |b_j|^2 - 2 a_i.b_j is >= 0 and 0
where rounding made it negative (the forward clamps d_ij at 0, whose gradient is 0 there, as
``clamp_min`` gives it). Work: the forward product a b^T once forward and once backward, plus K' b
(and K'^T a if b needs a gradient); memory: one block. sigma^2 is a constant (the loss detaches it).
"""
import torch
from torch import Tensor

#: Entries of a kernel-matrix block (all samples, some rows), per device type: 4 MB of float32 on the
#: CPU (memory under 2x NST-poly's at the paper's tap, time within 1.5x of the matmuls); on an H100 at
#: that tap 2^24 ran 2.2x faster than 2^22 (launch overhead of many row blocks) and 2^25 and up gained
#: < 10 % more (docs/benchmarks.md).
BLOCK_ELEMENTS = dict(cpu=1 << 20, cuda=1 << 24)


def _blocks(a: Tensor, b: Tensor):
    """Row slices of ``a`` and one reused (N, rows, C_b) buffer: allocating every block anew costs
    page faults (most when glibc returns large blocks to the system at once)."""
    block = BLOCK_ELEMENTS.get(a.device.type, BLOCK_ELEMENTS['cpu'])
    rows = min(a.shape[1], max(1, block // (a.shape[0] * b.shape[1])))
    buffer = a.new_empty(a.shape[0], rows, b.shape[1])
    for start in range(0, a.shape[1], rows):
        stop = min(start + rows, a.shape[1])
        yield slice(start, stop), buffer[:, :stop - start]


def _exponent(out: Tensor, a_blk: Tensor, b: Tensor, a_sq: Tensor, b_sq: Tensor, scale: Tensor) -> Tensor:
    """-d * scale in ``out``, d = |a_i|^2 + |b_j|^2 - 2 a_i.b_j (scale = 1 / (2 sigma^2))."""
    torch.add(a_sq.unsqueeze(2), b_sq.unsqueeze(1), out=out)
    return out.baddbmm_(a_blk, b.transpose(1, 2), alpha=-2.0).mul_(-scale)


class GaussianKernelSum(torch.autograd.Function):
    """``GaussianKernelSum.apply(a, b, sigma2, same)`` -> (N,): a (N, C_a, D), b (N, C_b, D),
    sigma2 (N, 1, 1); ``same=True`` when ``b`` is ``a`` (the gradient of both sides is then twice
    the row side's, by symmetry)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, sigma2: Tensor, same: bool) -> Tensor:
        scale = 0.5 / sigma2
        a_sq, b_sq = a.pow(2).sum(2), b.pow(2).sum(2)
        total = a.new_zeros(a.shape[0])
        for rows, out in _blocks(a, b):
            # K = exp(-max(d, 0) * scale): the clamp keeps rounding (d slightly < 0) from K > 1.
            exponent = _exponent(out, a[:, rows], b, a_sq[:, rows], b_sq, scale)
            total += exponent.clamp_(max=0).exp_().sum(dim=(1, 2))
        ctx.save_for_backward(a, b, scale)
        ctx.same = same
        return total

    @staticmethod
    def backward(ctx, grad_total: Tensor):
        a, b, scale = ctx.saved_tensors
        need_a = ctx.needs_input_grad[0]
        need_b = ctx.needs_input_grad[1] and not ctx.same
        if not (need_a or need_b):
            return None, None, None, None
        a_sq, b_sq = a.pow(2).sum(2), b.pow(2).sum(2)
        # d/dx exp(-d s) = -s exp(-d s) dd/dx, dd/da_i = 2 (a_i - b_j): factor -2 s per sample.
        factor = (-2.0 * scale.view(-1, 1, 1) * grad_total.view(-1, 1, 1)) * (2.0 if ctx.same else 1.0)
        grad_a = torch.empty_like(a) if need_a else None
        grad_b = torch.zeros_like(b) if need_b else None
        for rows, out in _blocks(a, b):
            # K' = exp(-d * scale) where d >= 0, 0 where d < 0 (clamp_min passes no gradient there).
            kernel = _exponent(out, a[:, rows], b, a_sq[:, rows], b_sq, scale)
            kernel = kernel.masked_fill_(kernel > 0, float('-inf')).exp_()
            if need_a:
                grad_a[:, rows] = factor * (a[:, rows] * kernel.sum(2, keepdim=True) - torch.bmm(kernel, b))
            if need_b:
                grad_b += factor * (b * kernel.sum(1).unsqueeze(2) - torch.bmm(kernel.transpose(1, 2), a[:, rows]))
        return grad_a, grad_b, None, None

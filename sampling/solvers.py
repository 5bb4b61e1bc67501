"""Flow solvers that advance a sample along a sigma schedule, one model output at a time.

* :class:`UniPCSolver`: UniPC with flow prediction, data (x0) prediction, B(h) = e^h - 1
  ("bh2"), a predictor of order <= 2 (order 1 on the first step, lower order on the last
  steps) and a corrector on every step after the first, as the official SkyReels-V2
  ``FlowUniPCMultistepScheduler`` does.  Scalars are float32 0-d tensors like the reference.
* :class:`EulerSolver`: ``x + (sigma_next - sigma) * v``.
* :class:`LCMSolver`: the sampler of the step-distilled models (lightx2v, CausVid, ComfyUI's
  ``lcm``): the clean prediction ``x0 = x - sigma v``, then fresh noise at the next sigma,
  ``(1 - sigma_next) x0 + sigma_next noise`` (none after the last step).  The noise comes
  from a seeded :class:`sampling.noise.NoiseSource`, so runs repeat exactly.
* :class:`DDIMSolver`: deterministic DDIM (eta 0) with v-prediction on a discrete ᾱ schedule
  (``sampling.alphas``), as diffusers' ``CogVideoXDDIMScheduler`` steps SkyReels-A1: the
  coefficients are float64 numbers applied in the sample's float32.

A solver holds its own multistep history, so diffusion forcing keeps one per latent frame.
"""
from __future__ import annotations

from typing import List, Optional

import torch

SOLVERS = ("unipc", "euler", "lcm")


class EulerSolver:
    def __init__(self, sigmas: torch.Tensor):
        self.sigmas = sigmas.float().cpu()
        self.index = 0

    @property
    def done(self) -> bool:
        return self.index >= self.sigmas.shape[0] - 1

    def step(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        i = self.index
        dt = (self.sigmas[i + 1] - self.sigmas[i]).to(x.device)
        self.index += 1
        return (x.float() + dt * v.float()).to(x.dtype)


class LCMSolver:
    def __init__(self, sigmas: torch.Tensor, noise):
        if noise is None:
            raise ValueError("the lcm solver needs a noise source")
        self.sigmas = sigmas.float().cpu()
        self.noise = noise
        self.index = 0

    @property
    def done(self) -> bool:
        return self.index >= self.sigmas.shape[0] - 1

    def step(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        i = self.index
        x0 = x.float() - self.sigmas[i].to(x.device) * v.float()
        nxt = float(self.sigmas[i + 1])
        self.index += 1
        if nxt > 0:
            x0 = (1 - nxt) * x0 + nxt * self.noise.randn(x.shape, device=x.device)
        return x0.to(x.dtype)


def _lam(sigma: torch.Tensor) -> torch.Tensor:
    return torch.log(1 - sigma) - torch.log(sigma)


def _coefficients(hh: torch.Tensor, rks: torch.Tensor, order: int):
    """R matrix and b vector of UniPC-bh2 for ``order``; also h*phi_1(h) and B(h)."""
    h_phi_1 = torch.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    b_h = torch.expm1(hh)
    factorial = 1
    R, b = [], []
    for k in range(1, order + 1):
        R.append(torch.pow(rks, k - 1))
        b.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    return torch.stack(R), torch.stack(b), h_phi_1, b_h


class UniPCSolver:
    def __init__(self, sigmas: torch.Tensor, order: int = 2, lower_order_final: bool = True):
        self.sigmas = sigmas.float().cpu()
        self.steps = self.sigmas.shape[0] - 1
        self.order = order
        self.lower_order_final = lower_order_final
        self.index = 0
        self.history: List[torch.Tensor] = []   # x0 predictions, newest last
        self.last_sample: Optional[torch.Tensor] = None
        self.this_order = 1
        self.lower_order_nums = 0

    @property
    def done(self) -> bool:
        return self.index >= self.steps

    def step(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.done:
            raise RuntimeError("the solver has already taken all %d steps" % self.steps)
        i = self.index
        dtype = x.dtype
        x = x.float()
        x0 = x - self.sigmas[i].to(x.device) * v.float()
        if i > 0 and self.last_sample is not None:
            x = self._correct(x0, self.last_sample, x, self.this_order)
        self.history = (self.history + [x0])[-self.order:]
        order = min(self.order, self.steps - i) if self.lower_order_final else self.order
        self.this_order = min(order, self.lower_order_nums + 1)
        self.last_sample = x
        out = self._predict(x, self.this_order)
        self.lower_order_nums = min(self.lower_order_nums + 1, self.order)
        self.index += 1
        return out.to(dtype)

    # ---------------------------------------------------------------- UniP / UniC

    def _segment(self, t: int, s0: int, order: int, device):
        """Terms of the step from sigma[s0] to sigma[t] using the last ``order`` x0 predictions.

        Returns ``x_t_(x)`` (the first-order part, a function of the start sample), the scalar
        ``alpha_t B(h)``, the UniPC system (R, b), m0 (newest x0) and the divided differences."""
        sig = self.sigmas
        sigma_t, sigma_s0 = sig[t], sig[s0]
        alpha_t = 1 - sigma_t
        lam_s0 = _lam(sigma_s0)
        h = _lam(sigma_t) - lam_s0
        m0 = self.history[-1]
        rks, d1s = [], []
        for k in range(1, order):
            rk = (_lam(sig[s0 - k]) - lam_s0) / h
            rks.append(rk)
            d1s.append((self.history[-(k + 1)] - m0) / rk.to(device))
        rks.append(torch.tensor(1.0))
        R, b, h_phi_1, b_h = _coefficients(-h, torch.stack(rks), order)
        ratio, lin = (sigma_t / sigma_s0).to(device), (alpha_t * h_phi_1).to(device)
        return (lambda x: ratio * x - lin * m0), (alpha_t * b_h).to(device), R, b, m0, d1s

    def _predict(self, x: torch.Tensor, order: int) -> torch.Tensor:
        """UniP-bh2: from sigma[i] to sigma[i+1]."""
        i, dev = self.index, x.device
        first, ab, R, b, _m0, d1s = self._segment(i + 1, i, order, dev)
        x_t = first(x)
        if d1s:
            rhos = torch.tensor([0.5]) if order == 2 else torch.linalg.solve(R[:-1, :-1], b[:-1])
            x_t = x_t - ab * sum(r.to(dev) * d for r, d in zip(rhos, d1s))
        return x_t

    def _correct(self, model_t: torch.Tensor, last: torch.Tensor, this: torch.Tensor, order: int) -> torch.Tensor:
        """UniC-bh2: refine the sample at sigma[i] with the new x0 prediction ``model_t``."""
        i, dev = self.index, this.device
        first, ab, R, b, m0, d1s = self._segment(i, i - 1, order, dev)
        rhos = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(R, b)
        res = sum(r.to(dev) * d for r, d in zip(rhos[:-1], d1s)) if d1s else 0
        return first(last) - ab * (res + rhos[-1].to(dev) * (model_t - m0))


class DDIMSolver:
    """``step(v, x)``: from timestep t_i to t_i - num_train // N (see ``alphas.DiscreteSchedule``)."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.index = 0

    @property
    def done(self) -> bool:
        return self.index >= self.schedule.steps

    def coefficients(self, i: int):
        """(sqrt(a_t), sqrt(1 - a_t), c1, c2) of step ``i`` as Python floats (float64)."""
        s = self.schedule
        a_t = s.alpha(int(s.timesteps[i]))
        a_p = s.alpha(s.prev_timestep(i))
        c1 = ((1 - a_p) / (1 - a_t)) ** 0.5
        return a_t ** 0.5, (1 - a_t) ** 0.5, c1, a_p ** 0.5 - a_t ** 0.5 * c1

    def step(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.done:
            raise RuntimeError("the solver has already taken all %d steps" % self.schedule.steps)
        sa, sb, c1, c2 = self.coefficients(self.index)
        dtype = x.dtype
        x, v = x.float(), v.float()
        x0 = sa * x - sb * v
        self.index += 1
        return (c1 * x + c2 * x0).to(dtype)


def make_solver(name: str, sigmas: torch.Tensor, noise=None):
    """A solver over ``sigmas``; ``noise`` (a NoiseSource) is drawn from by the stochastic ones."""
    if name == "unipc":
        return UniPCSolver(sigmas)
    if name == "euler":
        return EulerSolver(sigmas)
    if name == "lcm":
        return LCMSolver(sigmas, noise)
    raise ValueError("unknown solver %r; choose one of %s" % (name, ", ".join(SOLVERS)))

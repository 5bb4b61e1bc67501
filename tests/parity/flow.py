"""Golden runners for the flow solvers (driven by stored model outputs)."""
import torch

from skyreels_pack.sampling.sigmas import flow_schedule
from skyreels_pack.sampling.solvers import EulerSolver, UniPCSolver


def _run(case, solver_cls):
    p = case.params
    sched = flow_schedule(p["num_inference_steps"], p["shift"], "official")
    assert sched.template() == p["timesteps"], "integer timesteps differ from the stored ones"
    solver = solver_cls(sched.sigmas)
    x = case.inputs["x_init"]
    xs = []
    for i in range(sched.steps):
        x = solver.step(case.inputs["v"][i], x)
        xs.append(x)
    return {"x": torch.stack(xs), "sigmas": sched.sigmas, "timesteps": sched.timesteps}


FAMILY = "wan"

RUNNERS = {
    "flow_unipc": lambda case: _run(case, UniPCSolver),
    "flow_euler": lambda case: _run(case, EulerSolver),
}

"""10.03 diffusion: schedule, q(x_t | x_0) and posterior against an independent form and diffusers."""

import importlib.util

import torch

from harness import REGISTRY
from harness.testing import run_check
from models.diffusion import LinearSchedule

Task = REGISTRY.get("research.diffusion")


def test_check_passes():
    rec = run_check(Task)
    assert {"linear betas 1e-4..0.02, T=1000", "q(x_t | x_0) closed form", "loss falls", "samplers finite"} <= set(
        rec.checks
    )
    assert all(c["passed"] for c in rec.checks.values())
    if importlib.util.find_spec("diffusers"):
        assert "posterior step = diffusers DDPMScheduler.step" in rec.checks


def test_respaced_schedule_with_all_steps_is_the_original():
    s = LinearSchedule()
    r, ts = s.respaced(1000)
    assert torch.equal(ts, torch.arange(1000))
    assert torch.allclose(r.betas, s.betas, rtol=1e-9, atol=1e-12)

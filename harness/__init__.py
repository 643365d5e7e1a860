"""torchdrills harness: registry, task contract, checks, timer, results, report and CLI.

Task files import what they need from here::

    from harness import Operator, impl, task
"""

from harness.capabilities import setup_triton_interpreter

# Before anything imports triton: use its interpreter when no GPU is present.
setup_triton_interpreter()

# isort: off
from harness.checks import CheckFailed, Tolerance, compare  # noqa: E402
from harness.context import Context  # noqa: E402
from harness.task import Comparison, ImplSpec, Operator, Prepared, System, Task, TrainingRun, impl  # noqa: E402

# after harness.task: importing that submodule binds the name `harness.task` to it, and the
# decorator below must win
from harness.registry import REGISTRY, task  # noqa: E402
# isort: on

__all__ = [
    "REGISTRY",
    "CheckFailed",
    "Comparison",
    "Context",
    "ImplSpec",
    "Operator",
    "Prepared",
    "System",
    "Task",
    "Tolerance",
    "TrainingRun",
    "compare",
    "impl",
    "task",
]

"""Session-wide settings of the test run.

Compiling dominates the small tests' time on the CPU, and most of a compilation is
LLVM optimising the generated machine code, which pays off only for long-running
programs. The tests run tiny models for a few steps, so LLVM's optimisation level can be
lowered to 0 (`--xla_backend_optimization_level=0`). XLA's own graph passes (fusion,
simplification) are unchanged, as are the operations and their order, and fast-math
stays off; no tolerance was touched (the float64 1e-10..1e-12 checks of test_decoders.py
and the bit-for-bit resume of test_resume.py pass at level 0). Measured CPU
time (one core): test_baselines.py 56 -> 36 s, test_drive.py 79-84 -> 59 s, the demo's
end-to-end test 114 -> 89 s.

It must be set before jax starts its backend (at the first computation, not at
import), which a conftest does; worker processes inherit it. A value already set in
`XLA_FLAGS` wins.

Opt-in since 2026-12-02 (`WARP_TEST_XLA_O0=1`): with level 0 three full runs out of about
eight crashed with a segmentation fault inside XLA's compile (backend_compile_and_load;
in test_benchmarks_readouts.py, test_transitions.py and test_training.py, none
reproducible alone),
and none was seen at the default level. A flaky crash costs more than the time it saves
(a clean-clone `.ci/run`: 12 min at level 0, 16.6 min at the default), so by default the
suite compiles as users do.
"""

import os

FLAG = "--xla_backend_optimization_level"

if os.environ.get("WARP_TEST_XLA_O0") == "1":
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}=0".strip()

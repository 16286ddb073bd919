"""A physical prior the package does not ship: the unforced Duffing oscillator

    x'' = -delta x' - alpha x - beta x^3,   state (position x, velocity v),

as WARP's root network. The prior reads (alpha, beta, delta) from theta_t through the
default "weights" readout (theta_t are the weights of a small MLP [tau, x_prev] ->
parameters, which identifies each trajectory's values) and advances the previous
observation by one RK4 step of DT seconds, in the data's own units (WARP maps normalised
data back to them). Use it by import path, with this folder on PYTHONPATH:

    PYTHONPATH=examples warp-phys train --data duffing.npz --decoder duffing_prior:duffing ...

Run as a script, it simulates a data set of such oscillators with known parameters
(`params/alpha`, `params/beta`, `params/delta` in the .npz, read as the truth by
`warp-phys params` and `plot physics`):

    python examples/duffing_prior.py duffing.npz [--n 64] [--steps 80] [--seed 0]
"""

import argparse

import jax.numpy as jnp
import numpy as np

import warp_phys as wp

DT = 0.1  # seconds between two samples


# --- the prior: this is the whole definition ---------------------------------------------
@wp.decoder_from_function(
    params={"alpha": (), "beta": (), "delta": ()}, data_size=2,
    transforms={"alpha": "softplus", "beta": "softplus", "delta": "softplus"},
    init={"alpha": 1.0, "beta": 1.0, "delta": 0.2},
)  # fmt: skip
def duffing(p, tau, x):
    def f(s):  # the vector field (x', v')
        return jnp.stack([s[1], -p["delta"] * s[1] - p["alpha"] * s[0] - p["beta"] * s[0] ** 3])

    k1 = f(x)
    k2 = f(x + DT / 2 * k1)
    k3 = f(x + DT / 2 * k2)
    return x + DT / 6 * (k1 + 2 * k2 + 2 * k3 + f(x + DT * k3))


# --- a data set to try it on -------------------------------------------------------------
RANGES = {"alpha": (0.5, 2.0), "beta": (0.5, 2.0), "delta": (0.05, 0.3)}


def simulate(n: int, steps: int, seed: int = 0, substeps: int = 20) -> dict[str, np.ndarray]:
    """`n` Duffing trajectories from random parameters and initial states (fine RK4).

    **Returns:** the arrays of a data file: `y` `(n, steps, 2)` (position, velocity), `t`
    `(steps,)` in seconds, `channels`, and `params/<name>` `(n,)`, the true parameters.
    """
    rng = np.random.default_rng(seed)
    p = {k: rng.uniform(lo, hi, n) for k, (lo, hi) in RANGES.items()}
    s = np.stack([rng.uniform(-1.5, 1.5, n), rng.uniform(-1.0, 1.0, n)], axis=1)

    def f(s):
        x, v = s[:, 0], s[:, 1]
        return np.stack([v, -p["delta"] * v - p["alpha"] * x - p["beta"] * x**3], axis=1)

    h, states = DT / substeps, [s]
    for _ in range((steps - 1) * substeps):
        k1 = f(s)
        k2 = f(s + h / 2 * k1)
        k3 = f(s + h / 2 * k2)
        s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + f(s + h * k3))
        states.append(s)
    arrays = {
        "y": np.stack(states[::substeps], axis=1).astype(np.float32),
        "t": DT * np.arange(steps),
        "channels": np.array(["x", "v"]),
    }
    return arrays | {f"params/{k}": v for k, v in p.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description="simulate Duffing oscillators to a .npz")
    parser.add_argument("out", help="output .npz")
    parser.add_argument("--n", type=int, default=64, help="trajectories")
    parser.add_argument("--steps", type=int, default=80, help="samples per trajectory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    np.savez(args.out, **simulate(args.n, args.steps, args.seed))
    print(f"{args.n} Duffing trajectories x {args.steps} steps of {DT} s -> {args.out}")


if __name__ == "__main__":
    main()

"""A new physical prior in a few lines: a damped nonlinear pendulum as WARP's root network.

The prior is one symplectic-Euler step of  angle'' = -g sin(angle) - c angle',  from the
previous observation x_prev = (angle, angular velocity). It is written twice: as a plain
JAX function and as formula strings (parsed by a whitelist parser, never `eval`ed).
theta_t holds the two physical constants (g, c), kept positive by softplus transforms.

Both versions are trained briefly on a tiny synthetic data set (unknown g, c; random
initial states), forecast 48 steps from 16 observed ones, and report the constants they
read off theta. Runs in well under a minute on a laptop CPU:

    python examples/custom_prior.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import warp_phys as wp

T, CONTEXT = 64, 16
DT = 1.0 / (T - 1)  # physical time per step: the data span t in [0, 1]
G_TRUE, C_TRUE = 120.0, 0.8


# --- 1. the prior as a JAX function: this is the whole definition -----------------------
@wp.decoder_from_function(params={"g": (), "c": ()}, data_size=2,
                          transforms={"g": "softplus", "c": "softplus"}, init={"g": 60.0, "c": 2.0})
def pendulum(p, tau, x_prev):
    velocity = x_prev[1] + DT * (-p["g"] * jnp.sin(x_prev[0]) - p["c"] * x_prev[1])
    return jnp.stack([x_prev[0] + DT * velocity, velocity])


# --- 2. the same prior as formulas (x0, x1 = channels of x_prev; also a CLI spec) --------
accel = "(-g*sin(x0) - c*x1)"
pendulum_formula = wp.decoder_from_sympy(
    [f"x0 + {DT}*(x1 + {DT}*{accel})", f"x1 + {DT}*{accel}"], params=["g", "c"],
    transforms={"g": "softplus", "c": "softplus"}, init={"g": 60.0, "c": 2.0},
)


def make_data(n: int, seed: int, substeps: int = 20) -> np.ndarray:
    """`n` pendulum trajectories from random initial states (fine RK4); shape (n, T, 2)."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.uniform(-2.0, 2.0, n), rng.uniform(-3.0, 3.0, n)], axis=1)

    def f(x):
        return np.stack([x[:, 1], -G_TRUE * np.sin(x[:, 0]) - C_TRUE * x[:, 1]], axis=1)

    h, states = DT / substeps, [x]
    for _ in range((T - 1) * substeps):
        k1 = f(x)
        k2 = f(x + h / 2 * k1)
        k3 = f(x + h / 2 * k2)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + f(x + h * k3))
        states.append(x)
    return np.stack(states[::substeps], axis=1).astype(np.float32)


def main():
    train_data, test_data = make_data(64, seed=0), make_data(16, seed=1)
    print(f"forecast MSE of predicting zeros: {np.mean(test_data[:, CONTEXT:] ** 2):.3f}")
    for label, decoder in (("JAX function", pendulum), ("sympy formula", pendulum_formula)):
        model = wp.WARP(2, decoder=decoder, hyper_width=16, seq_len=T, key=jax.random.PRNGKey(0))
        model, _ = wp.train(model, train_data, steps=300, batch_size=16,
                            optimizer=wp.OptimizerOptions(lr=1e-2),
                            key=jax.random.PRNGKey(1), progress=False)
        forecast = wp.reconstruct(model, jnp.asarray(test_data[:, :CONTEXT]), T - CONTEXT)
        mse = float(jnp.mean((forecast - test_data[:, CONTEXT:]) ** 2))
        # theta_t *is* the physics: read (g, c) off the last context state of one sequence
        theta = model.weight_trajectory(jnp.asarray(test_data[0, :CONTEXT]))[-1]
        learned = model.decoder.constrain(model.decoder.unflatten(theta))
        print(f"{label:>13}: forecast MSE {mse:.3f} over {forecast.shape[1]} steps; "
              f"g = {float(learned['g']):.1f} (true {G_TRUE}), "
              f"c = {float(learned['c']):.2f} (true {C_TRUE})")


if __name__ == "__main__":
    main()

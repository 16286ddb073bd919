"""In-context linear regression: every sequence has its own random weight w, and its
tokens are (x_i, y_{i-1}) with y_i = w . x_i + noise. A trained model predicts y_i from
the pairs it has read, with no gradient step on the new w; least squares on the same
pairs is the reference.

Every model reads 16 learned features of each two consecutive tokens (they hold a pair
(x_{i-1}, y_{i-1})) and the token itself; WARP reads the running sum of the features, so
its weights gather statistics of the pairs (such as x y and x x^T), with A diagonal.

    python examples/icl_regression.py [--model warp] [--steps 2000]

No extra needed: the data are drawn on the fly.
"""

import argparse

import jax
import numpy as np

from warp_phys.tasks import icl_batch, least_squares_errors, run_task, step_outputs


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="warp", choices=["warp", "gru", "lstm", "transformer"])
    parser.add_argument("--steps", type=int, default=2000, help="training steps")
    parser.add_argument("--dim", type=int, default=2, help="input dimension of x")
    parser.add_argument("--pairs", type=int, default=12, help="(x, y) pairs per sequence")
    args = parser.parse_args(argv)
    model, _, result = run_task(
        task="icl", model=args.model, steps=args.steps, batch_size=64, root_width=24,
        root_depth=2, embed=16, embed_window=2, embed_raw=True, transition="diagonal",
        icl_dim=args.dim, icl_pairs=args.pairs, icl_noise=0.1, val_every=200,
    )  # fmt: skip
    print("pairs read:   " + " ".join(f"{i:6d}" for i in range(args.pairs)))
    print("model MSE:    " + " ".join(f"{e:6.3f}" for e in result["curve"]))
    print("least squares:" + " ".join(f"{e:6.3f}" for e in result["ls_curve"]))
    # a new task: the trained model adapts to a fresh w by reading its pairs only
    tokens, ys = icl_batch(jax.random.PRNGKey(123), 1, args.pairs, args.dim, noise=0.1)
    predicted = np.asarray(step_outputs(model, tokens[0])[:, -1])
    print(f"a fresh w: last y {float(ys[0, -1]):+.3f}, predicted {predicted[-1]:+.3f} "
          f"after {args.pairs - 1} pairs (least-squares MSE there: "
          f"{least_squares_errors(tokens, ys)[-1]:.3g})")  # fmt: skip
    return result


if __name__ == "__main__":
    main()

"""Classify the UEA BasicMotions set (accelerometer and gyroscope, 6 channels, 100 steps,
4 activities) with WARP: the root network's output after the last step is the class
logits (`WARP(output_size=4)`), trained with cross-entropy on that step only and
selected on a validation split carved from the training split.

WARP reads the running sum of 16 learned per-step features (`Embedded`): its state is
driven by input differences, so on the raw signal (A = I) its last state would only
know the first and last steps, while activities differ by their energy over the whole
sequence.

    pip install 'warp-phys[tasks]'           # aeon ships the data set
    python examples/classify_basic_motions.py [--steps 150]

About a minute on a laptop CPU. `warp-phys task --task basic_motions --model gru` runs
the same for a baseline.
"""

import argparse

import jax
import numpy as np

import warp_phys as wp
from warp_phys.tasks import Embedded, accuracy, classification_loss, fit, load_uea


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps")
    parser.add_argument("--width", type=int, default=32, help="root width")
    parser.add_argument("--features", type=int, default=16, help="embedded features per step")
    args = parser.parse_args(argv)
    data = load_uea("basic_motions")  # {"train" | "val" | "test": (xs, lengths, labels)}
    xs, lengths, labels = data["train"]
    # independent keys: WARP folds small integers into its key (A: 2), and a step n of
    # fit folds in n, so one key for both would draw step 2 with A's key
    warp_key, embed_key, train_key = jax.random.split(jax.random.PRNGKey(0), 3)
    warp = wp.WARP(
        args.features, output_size=len(data["classes"]), root_width=args.width, root_depth=1,
        decoder_options={"input_prev": False},  # the root reads tau only
        seq_len=xs.shape[1] + 1, key=warp_key,  # the output after the last step at tau = 1
    )  # fmt: skip
    model = Embedded(xs.shape[2], warp, features=args.features, accumulate=True,
                     seq_len=xs.shape[1], key=embed_key)  # fmt: skip

    def minibatch(k):  # 16 training sequences, drawn without replacement
        rows = np.asarray(jax.random.choice(k, len(labels), (16,), replace=False))
        return xs[rows], lengths[rows], labels[rows]

    model, history = fit(
        model, classification_loss, minibatch, steps=args.steps, key=train_key, lr=3e-3,
        validate=lambda m: 1 - accuracy(m, data["val"]), every=25,
    )  # fmt: skip
    test = accuracy(model, data["test"])
    print(f"WARP (D_theta = {warp.theta_size}) on BasicMotions: validation error "
          f"{min(history['val']):.2f}, test accuracy {100 * test:.1f}% "
          f"({len(data['test'][2])} sequences, {', '.join(data['classes'])})")  # fmt: skip
    return test


if __name__ == "__main__":
    main()

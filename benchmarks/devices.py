"""Data-parallel training: `train(..., devices=2)` against `devices=1` at the same global
batch (issue 9, section 3).

A worker process with `XLA_FLAGS=--xla_force_host_platform_device_count=2` sees the CPU
as two jax devices; in it the same WARP (MSD, autoregressive teacher forcing) trains for
the same steps from the same keys on one device and over both. Recorded: the median time
per step after the compiling one (from `train`'s history) and the largest difference of
the two models' parameters and losses. Both devices share the CPU cores: this measures
the sharded step's correctness and overhead, not scaling over devices with own compute.

    python -m benchmarks.devices               # results/devices.json + the README block
    python -m benchmarks.devices --render      # README block from the committed JSON
"""

import os
import sys
import time

from benchmarks import _harness as harness

FORCED_DEVICES = 2
FULL = {"n_train": 256, "seq_len": 256, "batch": 64, "steps": 30, "root_width": 16,
        "root_depth": 2, "hyper_width": 16}  # fmt: skip
SMOKE = {"n_train": 16, "seq_len": 32, "batch": 8, "steps": 4, "root_width": 4, "root_depth": 1,
         "hyper_width": 4}  # fmt: skip


def worker(spec: dict) -> dict:
    """Train the same WARP on 1 and on `FORCED_DEVICES` devices (run with the forced
    device count in the environment); returns timings and the differences."""
    import equinox as eqx
    import jax
    import numpy as np

    import systems
    import warp_phys as wp

    data = systems.generate("msd", spec["n_train"], split="train", seed=0, progress=False)
    y = np.asarray(data.y[:, : spec["seq_len"]])
    y = np.asarray(wp.Normalizer.fit(y).apply(y))
    runs, params = {}, {}
    sizes = {k: spec[k] for k in ("root_width", "root_depth", "hyper_width", "seq_len")}
    for n in (1, FORCED_DEVICES):
        options = {"final_activation": 5.0}
        model = wp.WARP(y.shape[2], **sizes, decoder_options=options, key=jax.random.PRNGKey(0))
        training = dict(steps=spec["steps"], batch_size=spec["batch"], devices=n, progress=False)
        model, history = wp.train(model, y, **training, key=jax.random.PRNGKey(1))
        step_s = np.diff(history["seconds"])  # steps 2.. (the first one compiles)
        run = dict(median_step_s=float(np.median(step_s)), min_step_s=float(np.min(step_s)))
        run.update(first_step_s=float(history["seconds"][0]), loss=history["loss"])
        runs[str(n)] = dict(run, sequences_per_s=spec["batch"] / float(np.median(step_s)))
        params[n] = [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]
    one, many = params[1], params[FORCED_DEVICES]
    param_diff = max(np.max(np.abs(a - b)) for a, b in zip(one, many, strict=True))
    loss_diff = np.abs(np.subtract(runs["1"]["loss"], runs[str(FORCED_DEVICES)]["loss"]))
    out = dict(device=harness.device(), jax_devices=len(jax.devices()), runs=runs)
    out.update(parameters=int(sum(x.size for x in one)), max_abs_param_diff=float(param_diff))
    out["max_abs_param"] = float(max(np.max(np.abs(a)) for a in one))
    out["max_abs_loss_diff"] = float(np.max(loss_diff))
    return dict(out, max_rel_loss_diff=float(np.max(loss_diff / np.abs(runs["1"]["loss"]))))


WORKERS = {"train": worker}


def markdown(result: dict) -> str:
    """The README block of a result."""
    spec, runs, n = result["config"], result["runs"], result["forced_devices"]
    rows = [
        f"{d} | {r['median_step_s']:.3g} | {r['sequences_per_s']:.0f} | {r['first_step_s']:.1f} s"
        for d, r in runs.items()
    ]
    ratio = runs[str(n)]["median_step_s"] / runs["1"]["median_step_s"]
    parts = [
        f"Measured {result['date']} on {result['device']}, split into {n} jax devices with "
        f"`XLA_FLAGS=--xla_force_host_platform_device_count={n}` (`{result['command']}`; load "
        f"average {result['load_average'][0]:.1f} before the run). WARP on MSD "
        f"({spec['n_train']} trajectories of {spec['seq_len']} steps, root MLP "
        f"{spec['root_width']}x{spec['root_depth']}, hypernetwork width {spec['hyper_width']}, "
        f"{result['parameters']:,} parameters), {spec['steps']} steps of global batch "
        f"{spec['batch']} from the same keys; time per step: median over steps 2-{spec['steps']}:",
        harness.table("devices | s per step | sequences / s | first step (compiles)", rows),
        f"After {spec['steps']} steps the {n}-device model's parameters differ from the "
        f"1-device model's by at most {result['max_abs_param_diff']:.2g} (largest parameter "
        f"{result['max_abs_param']:.3g}), the losses by at most "
        f"{result['max_rel_loss_diff']:.2g} relative (float32 rounding). The {n}-device step "
        f"takes {ratio:.2f}x the 1-device time, both forced devices sharing the same CPU "
        "cores: this shows that the sharded step is correct and what it costs, not the "
        "scaling of devices with their own compute (several GPUs), which was not measured.",
    ]
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes the JSON (and, unless `--smoke`, the README block)."""
    parser = harness.parser("devices", __doc__)
    parser.add_argument("--steps", type=int, default=None, help="training steps per run")
    args = harness.parse(parser, argv)
    if args.worker:
        return harness.serve(WORKERS, args.worker)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), markdown)
    spec = dict(SMOKE if args.smoke else FULL)
    spec["steps"] = args.steps or spec["steps"]
    flag = f"--xla_force_host_platform_device_count={FORCED_DEVICES}"
    env = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()}
    command = " ".join(["python -m benchmarks.devices", *(sys.argv[1:] if argv is None else argv)])
    start = time.perf_counter()
    measured = harness.checked(harness.run_worker("devices", "train", spec, env=env), "devices")
    result = dict(benchmark="devices", date=harness.stamp(), command=command, smoke=args.smoke)
    result.update(forced_devices=FORCED_DEVICES, config=spec, **measured)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return harness.finish(args, result, markdown)


if __name__ == "__main__":
    main()

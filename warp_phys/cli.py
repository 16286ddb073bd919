"""The `warp-phys` command line: argument parsing only; the work is done by the
library functions it calls."""

import argparse
import sys


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import main as demo_main

    demo_main(args.demo_args)


def _cmd_data(args: argparse.Namespace) -> None:
    import systems

    options = dict(split=args.split, seed=args.seed)
    if args.out:
        dataset = systems.generate(args.system, args.n, **options)
        path = systems.save(dataset, args.out)
    else:
        dataset = systems.generate_cached(args.system, args.n, cache_dir=args.cache_dir, **options)
        path = systems.cache_path(args.system, args.n, cache_dir=args.cache_dir, **options)
    print(f"{dataset.name} [{dataset.split}]: y {tuple(dataset.y.shape)} -> {path}")


def _cmd_list(args: argparse.Namespace) -> None:
    import systems

    from .decoders import list_decoders

    print("decoders:", ", ".join(list_decoders()))
    print("systems: ", ", ".join(systems.list_systems()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warp-phys",
        description="WARP: weight-space linear recurrent networks with physical root decoders.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # the demo parses its own options (`warp-phys demo --help` lists them)
    demo = sub.add_parser(
        "demo", help="train WARP on a small MSD set and forecast (make demo)", add_help=False
    )
    demo.set_defaults(func=_cmd_demo)

    data = sub.add_parser("data", help="generate a data set of a registered system as .npz")
    data.add_argument("--system", default="msd", help="registered system name (default: msd)")
    data.add_argument("--split", default="train", choices=["train", "val", "test", "ood"])
    data.add_argument("--n", type=int, default=None, help="trajectories (default: the system's)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--out", default=None, help="output .npz (default: the cache folder)")
    data.add_argument(
        "--cache-dir", default="data_cache", help="cache folder (default: data_cache)"
    )
    data.set_defaults(func=_cmd_data)

    lst = sub.add_parser("list", help="list registered decoders and systems")
    lst.set_defaults(func=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `warp-phys` console script; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "demo":
        args.demo_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        print(f"warp-phys: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``hivemind bench``: the engine raced against numpy, a per-agent loop and geomstats, as ratios."""

from __future__ import annotations

from hivemind.cli.common import EXIT_FAILED, EXIT_OK, UsageError, add_formats_arg, out_dir


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="race the engine against numpy, a per-agent loop and geomstats; ratios and goals")
    p.add_argument("--out", default="benchmarks/results", help="where bench.json and bench.png go (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="small sizes only (seconds, for a smoke test)")
    p.add_argument("--sizes", default=None, help="comma-separated agent counts (default 1000,10000,100000,1000000)")
    add_formats_arg(p, "png")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from dataclasses import replace

    from hivemind import bench

    formats = args.formats
    opts = bench.QUICK if args.quick else bench.BenchOptions()
    if args.sizes is not None:
        try:
            sizes = tuple(int(v) for v in args.sizes.split(","))
        except ValueError:
            raise UsageError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from None
        if not sizes or min(sizes) < 10:
            raise UsageError(f"--sizes must be integers >= 10, got {args.sizes!r}")
        opts = replace(opts, sizes=sizes, goal_n=sizes[-1] if opts.goal_n not in sizes else opts.goal_n)
    out = out_dir(args.out)
    result = bench.run_bench(opts)
    print(bench.report(result))
    for path in bench.save(result, out, formats):
        print(f"wrote {path}")
    return EXIT_OK if result["agree"] else EXIT_FAILED

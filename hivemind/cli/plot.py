"""``hivemind plot``: the figures of a run directory or a sweep directory."""

from __future__ import annotations

from pathlib import Path

from hivemind.cli.common import EXIT_OK, add_formats_arg, claim, out_dir


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="write the figures of a run directory into DIR/figures")
    p.add_argument("run_dir", help="a directory written by `hivemind run`")
    p.add_argument("--out", help="where to write the figures (default: RUN_DIR/figures)")
    add_formats_arg(p)
    p.add_argument("--no-animation", action="store_true", help="skip the GIF")
    p.set_defaults(func=cmd_plot)


def plot_run_dir(run_dir, out, formats, animate: bool) -> None:
    from hivemind.plot import plot_run

    paths = plot_run(run_dir, out, formats=formats, animate=animate)
    folder = paths[0].parent if paths else out
    print(f"figures: {folder}/ ({', '.join(p.name for p in paths)})")


def sweep_figures(ds, out: Path, formats) -> list[Path]:
    from hivemind.plot import save_figure, sweep_figure

    return save_figure(sweep_figure(ds), out / "sweep", formats)


def cmd_plot(args) -> int:
    from hivemind.io.results import RunDirError

    run_dir = Path(args.run_dir)
    if (run_dir / "sweep.nc").is_file():
        from hivemind.io.records import open_result

        out = claim(args, out_dir(args.out or str(run_dir)))
        paths = sweep_figures(open_result(run_dir / "sweep.nc"), out, args.formats)
        print(f"figures: {', '.join(str(p) for p in paths)}")
        return EXIT_OK
    if not (run_dir / "run.nc").is_file():
        raise RunDirError(f"{run_dir}: not a hivemind run (no run.nc)")
    from hivemind.io.documents import read_manifest

    if (run_dir / "manifest.json").is_file() and read_manifest(run_dir / "manifest.json").summary is not None:
        if read_manifest(run_dir / "manifest.json").summary.final_distance_mean is None:
            # The figures are drawn around the anchor (distances to it, the states seen from it).
            raise RunDirError(
                f"{run_dir}: a run without an anchor (every agent stubborn) has no distance to one to plot; "
                "its report.html draws the dispersion (hivemind report)"
            )
    claim(args, out_dir(args.out or str(run_dir / "figures")))
    plot_run_dir(args.run_dir, args.out, args.formats, animate=not args.no_animation)
    return EXIT_OK

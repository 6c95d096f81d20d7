"""``hivemind run``: simulate a scenario into a run directory, resumable, over one or several processes."""

from __future__ import annotations

import sys

from hivemind.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Progress,
    UsageError,
    add_processes_args,
    add_scenario_args,
    add_verbose_arg,
    describe,
    finish_report,
    join_processes,
    kernel_note,
    load,
    out_dir,
    peer_lost,
)


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="simulate a scenario and write run.nc + manifest.json")
    add_scenario_args(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--plot", action="store_true", help="write the figures into OUT/figures after the run")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in OUT from its last checkpoint")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    add_verbose_arg(p)
    add_processes_args(p, "run.shard = seeds or agents")
    p.set_defaults(func=cmd_run)


def _joined(args, scenario) -> bool:
    """Connect to the other processes when asked; whether there are several."""

    def splittable() -> None:
        if scenario.run.shard == "none":
            raise UsageError(
                f'{scenario.source}: run.shard = "none" keeps a run in one process; '
                'set run.shard = "seeds" or "agents" to spread it over several'
            )

    if not join_processes(args, splittable):
        return False
    import jax

    n_dev = jax.device_count()
    if scenario.run.shard == "agents" and n_dev > scenario.arrays.n_nodes:
        raise UsageError(
            f'{scenario.source}: run.shard = "agents" splits {scenario.arrays.n_nodes} agents over {n_dev} devices '
            f"of {jax.process_count()} processes: fewer agents than devices"
        )
    return True


def cmd_run(args) -> int:
    from hivemind.engine import processes
    from hivemind.io import checkpoint
    from hivemind.runner.rundir import ManifestError, run_in
    from hivemind.runner.simulate import (
        RecordsWriteError,
        SimulationDiverged,
        SimulationInterrupted,
        execution,
        execution_changes,
    )

    scenario = load(args)
    out = out_dir(args.out)
    several = _joined(args, scenario)
    writer = processes.is_writer()
    me = f"process {processes.index()} of {processes.count()}"
    bar = Progress(writer and not args.quiet)
    modes = []

    def started(mode: str) -> None:
        modes.append(mode)
        if mode == "complete":
            if writer:
                print(f"{out}: the run of this scenario is already complete; nothing to resume")
            return
        if not writer:
            share = f"{me}: computing its share of {scenario.name} (shard {scenario.run.shard})"
            print(f"{share}; process 0 writes {out}", flush=True)
        elif not args.quiet:
            print(describe(scenario), file=sys.stderr)
            note = kernel_note(scenario)
            if note:
                print(note, file=sys.stderr)
            if several:
                import jax

                print(
                    f"{processes.count()} processes, {jax.device_count()} devices, run.shard = {scenario.run.shard}",
                    file=sys.stderr,
                )
        if mode == "restart" and writer:
            print(f"{out}: no checkpoint to resume from; starting from step 0", flush=True)
        if mode == "resume" and writer:
            changed = execution_changes(checkpoint.saved_execution(out / "checkpoint"), execution(scenario))
            if changed:
                print(changed, flush=True)

    def progress(done: int, total: int) -> None:
        if modes == ["resume"]:
            modes.append("resumed")
            if not args.quiet:
                print(f"resuming from step {done} of {total}", flush=True)
        bar(done, total)

    def report(ds) -> None:  # process 0, the run finished, OUT still locked
        bar.close()
        if args.plot:
            from hivemind.cli.plot import plot_run_dir

            plot_run_dir(out, None, ("png", "pdf"), animate=True)
        if not args.quiet:
            print(f"done in {ds.attrs['wall_time_s']:.1f} s", file=sys.stderr)
        finish_report(out, args.verbose, [out / "run.nc", out / "manifest.json"])

    hint = " ".join(["hivemind run", args.scenario, "--out", str(out), *(f"--set {o}" for o in args.overrides), "--resume"])
    if several:
        hint += " --coordinator ... (every process, as before)"

    def stopped(reason: str, step: int | None) -> None:
        bar.close()
        if not writer:
            kept = "process 0 keeps the last checkpoint"
        elif step is None:
            kept = "no checkpoint was kept"
        else:
            kept = f"the checkpoint at step {step} is kept in {out}/checkpoint"
        peer_lost(f"{me}: another process of the run stopped ({reason}); {kept}; resume with: {hint}")

    # A silent process leaves this one waiting in a collective: the watchdog speaks for it.
    dog = processes.watch(args.timeout, lambda reason: stopped(reason, checkpoint.saved_step(out / "checkpoint")))
    try:
        run_in(scenario, out, resume=args.resume, force=args.force, progress=progress, started=started, then=report)
    except processes.PeerLost as e:
        stopped(str(e), e.step)
    except SimulationDiverged as e:
        bar.close()
        if not writer:
            print(f"{me}: {e}", file=sys.stderr)
        else:
            print(f"{scenario.source}: {e}; steps up to {int(e.dataset.step[-1])} saved in {out}/run.nc", file=sys.stderr)
        return EXIT_FAILED
    except SimulationInterrupted as e:
        bar.close()
        if writer:
            print(f"interrupted at step {e.step}: what was recorded is in {out}/run.nc; resume with: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RecordsWriteError as e:
        bar.close()
        kept = "nothing could be kept" if e.step is None else f"the checkpoint at step {e.step} is kept in {out}/checkpoint"
        print(f"{e}; {kept}; free space and resume with: {hint}", file=sys.stderr)
        return EXIT_FAILED
    except ManifestError as e:
        bar.close()
        print(e, file=sys.stderr)
        return EXIT_FAILED
    finally:
        if dog is not None:
            dog.stop()
        bar.close()
    if not writer and modes != ["complete"]:
        print(f"{me}: done", flush=True)
    return EXIT_OK

"""``hivemind validate``: read and check a scenario, without running it (and without loading jax)."""

from __future__ import annotations

from hivemind.cli.common import EXIT_OK, add_scenario_args, describe, load


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="check a scenario file without running it")
    add_scenario_args(p)
    p.set_defaults(func=cmd_validate)


def cmd_validate(args) -> int:
    scenario = load(args, engine=False)
    print(f"{args.scenario}: ok ({describe(scenario)})")
    return EXIT_OK

"""``hivemind datasets``: the published datasets inside the package, listed and cited."""

from __future__ import annotations

from hivemind.cli.common import EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("datasets", help="the published datasets that come with hivemind: list them, cite one")
    verbs = p.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="each dataset's name, what it holds, and its file")
    cite = verbs.add_parser("cite", help="a dataset's citation and licence")
    cite.add_argument("name", help="a dataset's name (hivemind datasets list)")
    p.set_defaults(func=cmd_datasets)


def cmd_datasets(args) -> int:
    from hivemind import datasets

    if args.verb == "cite":
        print(datasets.cite(args.name))
        return EXIT_OK
    for name in datasets.names():
        d = datasets.get(name)
        print(f"{name}: {d.title}; {d.licence}")
        print(f"  {d.shape}")
        print(f"  hivemind fit dataset:{name} {d.suggested} --out runs/{name}")
    return EXIT_OK

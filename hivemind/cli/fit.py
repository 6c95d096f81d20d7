"""``hivemind fit``: models of conversations fitted, scored against the simplest alternatives, and written.

Everything goes through ``theory.fitting``. Many discussions (a table, a published dataset, or a
NetCDF file with a conversation dimension): opinions as numbers or texts, cross-validated over
discussions. One conversation (a live run's directory, one per decoding, or a NetCDF file of
embeddings): held out by rounds.
"""

from __future__ import annotations

import sys

from hivemind.cli.common import EXIT_OK, UsageError, add_verbose_arg, claim, finish_report, out_dir


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="fit and score models of conversations: tables of opinions or texts (many discussions), a live run, a NetCDF file",
    )
    p.add_argument(
        "data",
        help="a table (.csv, .jsonl, .parquet: conversation, round, agent, opinion or text), a NetCDF file "
        "(embedding(round, agent, coord), or with a conversation dimension first), or a live run's directory",
    )
    p.add_argument("--out", required=True, help="output directory for fit.json (and the figure of one conversation)")
    g = p.add_argument_group("many discussions (tables, NetCDF with a conversation dimension)")
    g.add_argument("--opinion", default="opinion", help="numeric opinion column(s), comma-separated (default: opinion)")
    g.add_argument("--text", default=None, help="a text column instead: embedded with the default sentence embedder (minilm)")
    g.add_argument(
        "--embedder", default="minilm", help="with --text: minilm (default), or an ONNX embedder with tokenizer.json beside it"
    )
    g.add_argument("--anchor-text", default=None, help="the anchor's text (with --text); or give rows whose agent is 'anchor'")
    g.add_argument(
        "--attractor-by",
        default=None,
        help="column whose values each get an attractor (default: stance or group when present; none: no such models)",
    )
    g.add_argument(
        "--edges",
        default=None,
        help="a table (conversation, src, dst: dst hears src; optional weight, negative pushes away, and kind) "
        "of who hears whom (default: everyone); with kinds, the models edges[kind] fit one coupling per kind",
    )
    g.add_argument(
        "--missing",
        choices=("error", "drop"),
        default="error",
        help="an agent missing from a round: refuse, or drop (its transitions are left out; the others hear those who answered)",
    )
    g.add_argument(
        "--transform",
        choices=("log", "none"),
        default="none",
        help="log: fit the logarithms of the numbers (estimates of a quantity, heavy-tailed); recorded in fit.json",
    )
    g.add_argument(
        "--space", choices=("sphere", "euclidean"), default=None, help="default: the sphere for unit vectors and texts"
    )
    g.add_argument("--models", default=None, help="comma-separated, e.g. peer,peer+decay,attractor[stance]+decay (default: all)")
    g.add_argument("--folds", type=int, default=5, help="cross-validation folds over the training discussions (default 5)")
    g.add_argument("--test-share", type=float, default=0.5, help="share of discussions held out (default 0.5)")
    p.add_argument(
        "--train",
        type=int,
        default=None,
        help="transitions of each discussion fitted for the later-rounds score; of one conversation, the transitions "
        "fitted, the rest held out (default: half)",
    )
    p.add_argument("--seed", type=int, default=0, help="the seed of the held-out split, the folds and the bootstraps")
    p.add_argument("--level", type=float, default=0.9, help="the parameters' intervals' level (default 0.9)")
    add_verbose_arg(p)
    p.set_defaults(func=cmd_fit)


def cmd_fit(args) -> int:
    from hivemind.theory.fitting.data import has_conversations

    if args.folds < 2:
        raise UsageError(f"--folds must be 2 or more, got {args.folds}")
    if not 0.0 <= args.test_share < 1.0:
        raise UsageError(f"--test-share must be in [0, 1), got {args.test_share}")
    if not 0.0 < args.level < 1.0:
        raise UsageError(f"--level must be in (0, 1), got {args.level}")
    target = out_dir(args.out)
    args.data = discussions_of_run(args.data)
    if has_conversations(args.data, args.space):
        return _many(args, target)
    return _one(args, target)


def discussions_of_run(data: str) -> str:
    """A live run of several discussions is fitted from its discussions_<decoding>.csv: the one
    there is, or the one the user names when there are several decodings."""
    from pathlib import Path

    path = Path(data)
    tables = sorted(path.glob("discussions_*.csv")) if path.is_dir() else []
    if len(tables) > 1:
        names = ", ".join(str(t) for t in tables)
        raise UsageError(f"{data}: holds discussions of several decodings; fit one of them: {names}")
    return str(tables[0]) if tables else data


def _many(args, target) -> int:
    from pathlib import Path

    from hivemind.live.embedders import table_embedder
    from hivemind.plot import discussions_figure, save_figure
    from hivemind.theory.fitting.data import EMBEDDINGS_CACHE, Options, check, fit_discussions
    from hivemind.theory.fitting.models import split_names

    options = Options(
        opinion=tuple(c.strip() for c in args.opinion.split(",") if c.strip()),
        text=args.text,
        attractor_by=args.attractor_by,
        edges=args.edges,
        missing=args.missing,
        transform=None if args.transform == "none" else args.transform,
        space=args.space,
        models=split_names(args.models) if args.models else None,
        folds=args.folds,
        test_share=args.test_share,
        train=args.train,
        seed=args.seed,
        anchor_text=args.anchor_text,
        level=args.level,
    )
    if args.text and args.embedder != "minilm" and not Path(args.embedder).is_file():
        raise UsageError(f"--embedder: {args.embedder}: no such file (minilm, or an ONNX file with tokenizer.json beside it)")
    data = check(args.data, options)  # a refused table, column or model leaves OUT untouched
    out = claim(args, target)
    say = lambda s: print(s, file=sys.stderr, flush=True)  # progress on stderr
    embed = table_embedder(args.embedder, out / EMBEDDINGS_CACHE, say)
    doc = fit_discussions(args.data, out, options, say, data=data, embed=embed).to_json()
    save_figure(discussions_figure(doc), out / "fit", ("png",))
    finish_report(out, args.verbose, [out / "fit.json", out / "fit.png"])
    return EXIT_OK


def _one(args, target) -> int:
    from hivemind.io.trajectories import load
    from hivemind.plot import discussions_figure, save_figure
    from hivemind.theory.fitting import Design, check_design

    runs = load(args.data)  # a refused file leaves OUT untouched
    design = Design(test_share=0.0, train=args.train, seed=args.seed, level=args.level)
    try:
        for t in runs:
            check_design(design, 1, t.y.shape[0] - 1)
    except ValueError as e:
        raise UsageError(f"--{e}") from None
    out = claim(args, target)
    say = lambda s: print(s, file=sys.stderr, flush=True)  # progress on stderr
    from hivemind.theory.fitting.data import fit_trajectories

    fits = fit_trajectories(args.data, out, design, say)
    for name, comparison in fits.items():
        save_figure(discussions_figure(comparison.to_json()), out / (f"fit_{name}" if name else "fit"), ("png",))
    figures = [out / (f"fit_{name}.png" if name else "fit.png") for name in fits]
    finish_report(out, args.verbose, [out / "fit.json", *figures])
    return EXIT_OK

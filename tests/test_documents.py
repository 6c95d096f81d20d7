"""The numbers the README quotes from a JSON file match it: each generated block is rendered
again from its JSON by the script that writes both, and compared (analysis/readme_blocks.py
rewrites them)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def script(path: str):
    import sys

    if str(ROOT / "analysis") not in sys.path:  # the analysis scripts import their _common, as when run
        sys.path.append(str(ROOT / "analysis"))
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GUIDE = sorted((ROOT / "docs" / "guide").glob("*.md"))


def block(name: str, document: str = "guide") -> str:
    """The generated block ``name`` of a document: ``"guide"`` is whichever page of docs/guide holds it."""
    if document == "guide":
        holding = [p for p in GUIDE if f"<!-- {name}:begin" in p.read_text()]
        assert len(holding) == 1, f"{name} should be in exactly one page of docs/guide, found {holding}"
        document = str(holding[0].relative_to(ROOT))
    text = (ROOT / document).read_text()
    m = re.search(rf"<!-- {name}:begin[^>]*-->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert m, f"{document} has no {name} block"
    return m.group(1)


def test_the_published_discussions_table_matches_its_json():
    analysis = script("analysis/llm_discussions.py")
    doc = json.loads((ROOT / "figures" / "llm_discussions.json").read_text())
    assert block("llm_discussions") == analysis.table(doc)


def test_analysis_readme_quotes_the_same_tables():
    analysis = script("analysis/llm_discussions.py")
    doc = json.loads((ROOT / "figures" / "llm_discussions.json").read_text())
    assert block("llm_discussions", "analysis/README.md") == analysis.table(doc)
    calibration = script("analysis/fit_calibration.py")
    doc = json.loads((ROOT / "figures" / "fit_calibration.json").read_text())
    assert block("fit_calibration", "analysis/README.md") == calibration.table(doc)


def test_the_claims_around_that_table_hold_in_its_json():
    doc = json.loads((ROOT / "figures" / "llm_discussions.json").read_text())
    for name, d in doc["datasets"].items():
        models = d["models"]
        # Models are compared on their cross-validated skill (the held-out one is the chosen model's alone).
        skill = {m: v["cv_skill_vs_persistence"] for m, v in models.items()}
        assert all("heldout_skill_vs_persistence" not in v for v in models.values())
        # "+decay improves every model's cross-validated skill"
        for base in [m for m in models if not m.endswith("+decay") and m + "+decay" in models]:
            assert skill[base + "+decay"] > skill[base], (name, base)
        # the peer pull alone beats persistence, with its interval above 0
        assert models["peer"]["cv_interval"][0] > 0, name
        # chosen on training data, and at least as good as the hand-written fits
        assert d["best"] == max(models, key=lambda m: (round(models[m]["cv_skill_vs_persistence"], 4), -models[m]["n_params"]))
        # "who pulls whom by stance beats one coupling for everyone but not the attractors"
        assert skill["peer+decay"] < skill["groups[stance]+decay"] < skill[d["best"]], name
        # "the decay's timescale is identified when the coupling is the only pull: about a round"
        lo, hi = models["peer+decay"]["intervals"]["coupling_timescale"]
        assert 0.5 < lo < models["peer+decay"]["params"]["coupling_timescale"] < hi < 2.0, name
    assert doc["datasets"]["mixtral_8x7b"]["best_heldout"]["skill_vs_persistence"] >= 0.19
    assert doc["datasets"]["dolphin_mixtral"]["best_heldout"]["skill_vs_persistence"] >= 0.6


@pytest.mark.parametrize("name", ["fit_speed"])
def test_the_speed_line_matches_the_benchmark(name):
    bench = script("benchmarks/fit_discussions.py")
    results = json.loads((ROOT / "benchmarks" / "results" / "fit_discussions.json").read_text())
    assert block(name) == bench.sentence(results)


@pytest.mark.parametrize(
    "name, path, function, data, documents",
    [
        ("probe_check", "analysis/live_pairs.py", "check_table", "figures/live_pairs.json", ("guide",)),
        ("live_pairs", "analysis/live_pairs.py", "table", "figures/live_pairs.json", ("guide", "analysis/README.md")),
        ("probe_cost", "benchmarks/live_probe.py", "sentence", "benchmarks/results/live_probe.json", ("guide",)),
        ("live32_probes", "analysis/live32_probes.py", "table", "figures/live32_probes.json", ("analysis/README.md",)),
        ("hk_counts", "analysis/phase_diagram.py", "hk_counts", "figures/phase_diagram.json", ("analysis/README.md",)),
        ("entropy_table", "analysis/entropy_collapse.py", "table", "figures/entropy_collapse.json", ("analysis/README.md",)),
    ],
)
def test_the_probe_blocks_match_their_json(name, path, function, data, documents):
    rendered = getattr(script(path), function)(json.loads((ROOT / data).read_text()))
    for document in documents:
        assert block(name, document) == rendered, document


def test_the_claims_about_the_small_models_probes_hold_in_their_json():
    doc = json.loads((ROOT / "figures" / "live_pairs.json").read_text())
    for model, r in doc["results"].items():
        probes = r["validity"]["check_set"]
        # "Our two small models cannot state a stance this way, and the probes say so"
        assert not probes["reliable"], model
        assert not any(f["reliable"] for f in probes["forms"].values()), model
        # the run chose the form with the best check-set order, on the check set alone
        best = max(probes["forms"], key=lambda f: (probes["forms"][f]["negation_auc"], probes["forms"][f]["overall_mass"]))
        assert probes["form"] == best, model
        assert r["pairs"] == 200 and r["rounds"] == 5


def test_the_claims_about_the_pair_study_hold_in_its_json():
    doc = json.loads((ROOT / "figures" / "live_pairs.json").read_text())
    mixtral = json.loads((ROOT / "figures" / "llm_discussions.json").read_text())["datasets"]["mixtral_8x7b"]
    published = mixtral["models"][mixtral["best"]]["params"]["attractor"]
    published_span = max(v[0] for v in published.values()) - min(v[0] for v in published.values())
    assert published_span > 3.5  # "the published Mixtral's span about four points"
    r = doc["results"]
    gemma, smol = r["gemma3"], r["smollm2"]
    # Gemma: round-0 probe ordered by stance in about 70 % of pairs, moving by about its noise
    assert 0.65 < gemma["validity"]["stance_auc_positive_vs_negative"] < 0.75
    by_stance = gemma["validity"]["mean_probe_by_stance"]
    noise = gemma["validity"]["check_set"]["forms"][gemma["probe_form"]]["noise"]
    assert max(by_stance.values()) - min(by_stance.values()) < 2 * noise
    # SmolLM2's at chance
    assert abs(smol["validity"]["stance_auc_positive_vs_negative"] - 0.5) < 0.05
    for model, one in r.items():
        attractors = one["fits"]["probe"]["params"]["attractor"]
        values = [v[0] for v in attractors.values()]
        assert max(values) - min(values) < 0.2, model  # "within 0.2 of each other"
        # "the two messages' embeddings come closer", with intervals apart
        c = one["convergence"]
        assert c["embedding_distance_interval"][-1][1] < c["embedding_distance_interval"][0][0], model
        # "peer+decay forecasts the embedded texts better than a constant pull"
        texts = one["fits"]["embedding"]["models"]
        assert texts["peer+decay"]["heldout_skill_vs_persistence"] > texts["peer"]["heldout_skill_vs_persistence"], model
    # one level per model: Gemma about +1.2, SmolLM2 about -1.8
    assert all(1.0 < v[0] < 1.3 for v in gemma["fits"]["probe"]["params"]["attractor"].values())
    assert all(-1.9 < v[0] < -1.6 for v in smol["fits"]["probe"]["params"]["attractor"].values())
    assert 0.7 < gemma["fits"]["probe"]["heldout"]["skill_vs_persistence"] < 0.8
    assert smol["fits"]["probe"]["heldout"]["interval_vs_persistence"][0] < 0
    # Gemma's pull fades within about a round, SmolLM2's over several
    g = gemma["fits"]["embedding"]["models"]["peer+decay"]
    s = smol["fits"]["embedding"]["models"]["peer+decay"]
    assert g["params"]["coupling_timescale"] < 1.0 and g["intervals"]["coupling_timescale"][1] < 2.0
    assert s["params"]["coupling_timescale"] > 2.5 and s["intervals"]["coupling_timescale"][0] > 2.0


def test_the_claims_about_the_probed_population_hold_in_its_json():
    runs = {r["run"]: r for r in json.loads((ROOT / "figures" / "live32_probes.json").read_text())["runs"]}
    stochastic = [r for name, r in runs.items() if name.startswith("stochastic")]
    # "in every stochastic run both say toward"; "in the greedy run the embedder cannot tell"
    assert all(r["embedder_says"] == r["probe_says"] == "toward" for r in stochastic)
    assert runs["greedy"]["embedder_says"] == "unclear" and runs["greedy"]["probe_says"] == "toward"
    # "the probe rises by about half a point in every run"
    assert all(0.4 < r["probe"][1] - r["probe"][0] < 0.65 for r in runs.values())
    # "agree in sign for little more than half", "correlations near zero in four runs of five"
    assert all(0.5 <= r["agents_agreeing"] < 0.7 for r in runs.values())
    assert sum(abs(r["agent_correlation"]) < 0.15 for r in runs.values()) == 4
    # "at round 0 the probe does not even follow the stances"
    assert all(abs(r["stance_probe_correlation_round0"]) < 0.1 for r in runs.values())
    # the messages quoted where the two disagree most
    last = {r["example"]["last"] for r in runs.values() if r["example"]}
    assert {"You are right.", "I agree with the second opinion."} <= last


def test_the_check_set_sentence_holds_in_its_json():
    doc = json.loads((ROOT / "figures" / "live_pairs.json").read_text())
    best = {m: max(f["negation_auc"] for f in r["validity"]["check_set"]["forms"].values()) for m, r in doc["results"].items()}
    # "Gemma's best form orders 77 % of paraphrase-rejection pairs ... SmolLM2's best reaches 60 %"
    assert round(best["gemma3"], 2) == 0.77 and round(best["smollm2"], 2) == 0.60
    gemma = doc["results"]["gemma3"]["validity"]["check_set"]["forms"]["judge_yes_no"]
    assert gemma["signal"] < 2 * gemma["noise"]


def test_the_readme_shows_the_demo_verdict_as_the_quickstart_prints_it(tmp_path, capsys):
    """The README's first screen: the verdict `make demo` prints, checked against a real run."""
    from hivemind.cli import main

    shown = block("demo_verdict", "README.md").strip().removeprefix("```text").removesuffix("```").strip().splitlines()
    assert main(["run", str(ROOT / "scenarios" / "quickstart.toml"), "--out", str(tmp_path / "q"), "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()[: len(shown)]
    # The end of the approach sits at float32's rounding floor near 1e-5, whose last digits
    # depend on the CPU and the pair kernel: that number is checked to be at the floor, the
    # rest of the lines exactly.
    final = re.compile(r"-> ([0-9.e+-]+);")
    for line in (*shown, *printed):
        for value in final.findall(line):
            assert float(value) < 1e-4
    assert [final.sub("-> FLOOR;", line) for line in printed] == [final.sub("-> FLOOR;", line) for line in shown]


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    first_screen = "\n".join(text.splitlines()[:40])
    assert "make demo" in first_screen and "make test" in first_screen
    for link in re.findall(r"\]\(((?:docs|analysis)/[^)#]+)", text):  # every page it points to exists
        assert (ROOT / link).is_file(), link


def test_the_live_quickstart_verdict_and_its_prose_hold_in_its_json():
    quickstart = script("analysis/live_quickstart.py")
    summary = json.loads((ROOT / "figures" / "live_quickstart.json").read_text())
    assert block("live_quickstart") == quickstart.verdict(summary)
    fits = summary["fit"]
    # "held out: the last three rounds; greedy's chosen model does not beat persistence there, the sampled one's does"
    for f in fits.values():
        assert f["design"]["heldout_from_round"] == 2 and f["best_heldout"]["transitions"] == 3 * 8
    assert fits["greedy"]["best_heldout"]["skill_vs_persistence"] < 0 < fits["stochastic"]["best_heldout"]["skill_vs_persistence"]
    # "greedy: not measurably above zero; sampled: measurable"
    assert fits["greedy"]["anchor_pull"]["measurable"] is False
    assert fits["stochastic"]["anchor_pull"]["measurable"] is True
    # "both move a little toward the anchor (less than a tenth of a radian)"
    rows = {r["decoding"]: r for r in summary["table"]}
    for d in ("greedy", "stochastic"):
        assert -0.1 < rows[d]["final_embedding_distance"] - rows[d]["initial_embedding_distance"] < 0
    # "run with its fitted noise, the sampled run's model follows its mean curve (R^2 about a half); greedy's does not"
    assert fits["stochastic"]["theory"]["r2_mean"] > 0.4 and fits["greedy"]["theory"]["r2_mean"] < 0


def test_the_fused_kernel_table_and_its_prose_hold_in_the_benchmark():
    bench = script("benchmarks/fused.py")
    doc = json.loads((ROOT / "benchmarks" / "results" / "fused.json").read_text())
    assert block("fused_kernel") == bench.table(doc)
    assert block("fused_speed", "README.md") == bench.summary(doc)
    rows = {r["n"]: r for r in doc["rows"]}
    # auto takes it because it is faster than the pure-JAX kernel at every size measured
    assert all(r["fused_x_jax"] > 1.0 for r in doc["rows"])
    # "at 10^6 agents ... the share falls there"
    assert rows[1_000_000]["fused_bandwidth_share"] < rows[100_000]["fused_bandwidth_share"]


def test_the_speed_guide_shows_hivemind_bench_as_it_measured():
    bench = script("benchmarks/run.py")
    doc = json.loads((ROOT / "benchmarks" / "results" / "bench.json").read_text())
    assert block("bench_sizes") == bench.table(doc)
    assert block("bench_facts") == bench.facts(doc)
    assert doc["agree"]  # the table is of implementations that agree


def test_the_sweep_speed_paragraph_is_the_benchmarks_own():
    bench = script("benchmarks/sweep.py")
    doc = json.loads((ROOT / "benchmarks" / "results" / "sweep.json").read_text())
    assert block("sweep_speed") == bench.sentence(doc)
    p = doc["profile"]
    # the parts add up to what was timed, and the runs are the grid
    assert p["runs"] == doc["points"] * doc["seeds"]
    assert abs(p["loop_steps_s"] + p["loop_records_s"] + p["loop_calls_s"] - doc["loop_seconds"]) < 0.05 * doc["loop_seconds"]


def test_the_live_scale_table_and_its_claims_hold_in_the_benchmark():
    bench = script("benchmarks/live.py")
    doc = json.loads((ROOT / "benchmarks" / "results" / "live_scale.json").read_text())
    assert block("live_scale", "docs/guide/discussions.md") == bench.scale_table(doc)
    rows = {(r["model"][:5], r["agents"]): r for r in doc["rows"]}
    # "1,024 Gemma agents complete a round", in batches of at most 256 sequences per context
    assert rows[("gemma", 1024)]["contexts_per_round"] == 4 and rows[("gemma", 1024)]["sequences_per_context"] == 256
    # the bare decode did the same work: as many completion tokens as hivemind's round produced
    assert all(r["ceiling_seconds"] > 0 and r["completion_tokens"] > 0 for r in doc["rows"])
    # README: "a round of 1,024 agents on two cores takes about four minutes with Gemma 3 270M, ...
    # within a few percent of bare llama.cpp"
    readme = (ROOT / "README.md").read_text()
    assert "A round of 1,024 agents on two" in readme and "about four minutes" in readme
    assert 3.5 * 60 <= rows[("gemma", 1024)]["seconds_per_round"] <= 4.5 * 60
    assert 0.9 <= rows[("gemma", 1024)]["x_ceiling"] <= 1.1
    # the slopes are the rows' own
    for model, value in doc["slope_from_64"].items():
        mine = [r for r in doc["rows"] if r["model"] == model and r["agents"] >= 64]
        assert value == pytest.approx(bench.slope([r["agents"] for r in mine], [r["seconds_per_round"] for r in mine]))


def test_the_server_spread_sentence_is_the_benchmarks_own():
    bench = script("benchmarks/live_server.py")
    doc = json.loads((ROOT / "benchmarks" / "results" / "live_spread.json").read_text())
    assert block("live_spread", "docs/guide/servers.md") == bench.spread_sentence(doc)
    assert [r["servers"] for r in doc["rows"]] == [0, 1, 2, 4]


def test_citation_and_changelog_name_the_packages_version():
    """CITATION.cff, CHANGELOG.md, pyproject.toml and hivemind._version agree on the version."""
    import re
    import tomllib

    from hivemind._version import __version__

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cff = re.search(r"^version: (\S+)$", (ROOT / "CITATION.cff").read_text(), re.M).group(1)
    assert project == __version__ == cff
    assert f"({__version__})" in (ROOT / "CHANGELOG.md").read_text().split("\n## ")[1].splitlines()[0]


def _analysis_manifest() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "analysis" / "manifest.toml").read_text())


def test_every_figure_json_is_produced_by_an_entry_of_the_analysis_manifest():
    """make analysis regenerates every claim: each figures/*.json has an entry that writes it,
    each entry's script names what it writes, and the archive holds what retired scripts left."""
    import shlex

    manifest = _analysis_manifest()
    produced = {out: e for e in manifest["script"] for out in e["outputs"]}
    orphans = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "figures").glob("*.json") if str(p.relative_to(ROOT)) not in produced
    )
    assert not orphans, f"no entry of analysis/manifest.toml produces {orphans}"
    for entry in manifest["script"]:
        words = shlex.split(entry["run"])
        if words[0] == "make":
            target = words[1]
            assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M), target
            continue
        source = (ROOT / words[0]).read_text()
        for out in entry["outputs"]:
            assert Path(out).name in source or Path(out).stem in source, f"{words[0]} does not name {out}"
        for doc in entry["documents"]:
            assert (ROOT / doc).is_file(), doc
    for archived in manifest["archived"]:
        for out in archived["outputs"]:
            assert (ROOT / out).is_file() and f"/{archived['commit']}/" in out, out
    assert "analysis/run_all.py" in (ROOT / "Makefile").read_text().split("\nanalysis:")[1].split("\n\n")[0]


def test_documents_cite_only_jsons_the_manifest_regenerates_for_them():
    manifest = _analysis_manifest()
    archived = {out for a in manifest["archived"] for out in a["outputs"]}
    cited_by: dict[str, set[str]] = {}
    for e in manifest["script"]:
        for out in e["outputs"]:
            cited_by.setdefault(out, set()).update(e["documents"])
    documents = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md")), ROOT / "analysis" / "README.md"]
    for doc in documents:
        name = str(doc.relative_to(ROOT))
        for cited in set(re.findall(r"figures/(?:archive/\w+/)?[a-z0-9_]+\.json", doc.read_text())):
            assert cited in archived or name in cited_by.get(cited, set()), f"{name} cites {cited}, not listed for it"


def test_console_samples_are_generated_or_marked_as_illustrations():
    """A console block that shows output is either a generated block (checked against its JSON)
    or says it is an illustration and which commit printed it."""
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]:
        text = doc.read_text()
        generated = [(m.start(), m.end()) for m in re.finditer(r"<!-- (\w+):begin.*?<!-- \1:end -->", text, re.S)]
        for m in re.finditer(r"```console\n(.*?)```", text, re.S):
            lines = m.group(1).splitlines()
            continued = {k + 1 for k, line in enumerate(lines) if line.rstrip().endswith("\\")}  # a command's next line
            output = [x for k, x in enumerate(lines) if x.strip() and not x.startswith("$") and x != "..." and k not in continued]
            if not output or any(a <= m.start() < b for a, b in generated):
                continue
            before = text[: m.start()].rstrip("\n").splitlines()[-1]
            marked = re.fullmatch(r"\*Illustration: output as printed by hivemind at commit ([0-9a-f]{7,})\.\*", before)
            assert marked, f"{doc.name}: a console sample with output, neither generated nor marked: {output[0][:60]!r}"
            commit = marked.group(1)
            assert commit_known(commit), f"{doc.name}: no commit {commit} in this repository"


def commit_known(commit: str) -> bool:
    """The commit is in this repository's history (not checked in a shallow clone or an sdist)."""
    import subprocess

    git = ["git", "-C", str(ROOT)]
    shallow = subprocess.run([*git, "rev-parse", "--is-shallow-repository"], capture_output=True, text=True)
    if not (ROOT / ".git").exists() or shallow.stdout.strip() != "false":
        return True
    return subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True).returncode == 0


def test_the_design_scale_table_and_the_readmes_claim_hold_in_the_benchmark():
    bench = script("benchmarks/design.py")
    doc = json.loads((ROOT / "benchmarks" / "results" / "design_scale.json").read_text())
    assert block("design_scale", "docs/guide/design.md") == bench.table(doc)
    rows = {(r["agents"], r["intervention"]): r for r in doc["rows"]}
    largest = rows[(100_000, "innate")]
    # README: "designs innate opinions on a 10^5-agent scale-free graph in about a minute"
    readme = (ROOT / "README.md").read_text()
    assert "designs innate opinions on a 10^5-agent scale-free graph in about a minute" in readme
    assert 30 <= largest["design_s"] <= 90 and largest["converged"]
    # every solve agreed with scipy's, and the goal: under 5 minutes on 2 cores
    assert all(r["max_difference_from_scipy"] < 1e-7 for r in doc["rows"])
    assert largest["design_s"] < 300 and doc["machine"]["cpus"] == 2
    assert doc["greedy"]["same_choice"]
    # the guide: "from 10^4 agents on, scipy's compiled sparse product is as fast or faster per solve"
    assert all(r["scipy_cg_over_ours"] <= 1.05 for r in doc["rows"] if r["agents"] >= 10_000)
    assert all(r["spsolve_over_ours"] is None for r in doc["rows"] if r["agents"] > 1_000)
    # the guide: "a gradient costs about two solves whatever the number of variables"
    assert all(1.5 <= r["gradient_over_solve"] <= 2.5 for r in doc["rows"])


def test_the_design_example_table_holds_in_its_json():
    example = script("analysis/design_example.py")
    doc = json.loads((ROOT / "figures" / "design_example.json").read_text())
    assert block("design_example", "docs/guide/design.md") == example.table(doc)
    assert doc["threshold"] == pytest.approx(doc["start"] / 2)
    for method in ("gradient", "greedy", "degree"):
        k = doc["answer"][method]
        values = dict(zip(doc["budgets"], doc[method], strict=True))
        if k is not None:
            assert values[k] >= doc["threshold"] and all(values[j] < doc["threshold"] for j in doc["budgets"] if j < k)
        else:
            assert all(v < doc["threshold"] for v in values.values())
    # the guide: "at every k, greedy keeps the most, the gradient's relaxation, rounded, less, and degree the least"
    assert all(g >= d >= e for g, d, e in zip(doc["greedy"], doc["gradient"], doc["degree"], strict=True))

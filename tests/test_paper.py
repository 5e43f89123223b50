"""The paper consumes artifacts only: every number it prints is a generated macro, every figure exists.

No LaTeX needed. ``paper/generated/numbers.tex`` is written by ``experiments/paper_numbers.py`` (see
its docstring for the macro naming scheme); here we check, by parsing ``paper/paper.tex``, that

- every generated-style macro the paper uses (a name starting with a capital letter that the paper
  does not define itself) is defined in ``numbers.tex``;
- every ``\\includegraphics`` target exists under the ``\\graphicspath`` that ``numbers.tex`` sets;
- every citation key is in ``refs.bib``;
- the theory tables in ``numbers.tex`` are those the package's exponent table gives today.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "paper"
NUMBERS = PAPER / "generated" / "numbers.tex"

# Capitalized commands that come from LaTeX or its packages, not from the generator.
LATEX_COMMANDS = frozenset({"Cref", "FloatBarrier", "LaTeX", "TeX", "S", "Large", "LARGE", "Huge", "P", "Delta",
                            "Gamma", "Theta", "Omega", "Sigma", "Phi", "Psi", "Lambda", "Pi", "Xi", "Upsilon"})


@functools.cache
def _load_generator() -> ModuleType:
    """experiments/paper_numbers.py as a module, loaded once."""
    spec = importlib.util.spec_from_file_location("paper_numbers", ROOT / "experiments" / "paper_numbers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("paper_numbers", module)
    spec.loader.exec_module(module)
    return module


def _strip_comments(tex: str) -> str:
    return "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in tex.splitlines())


def _definitions(tex: str) -> dict[str, str]:
    """``\\newcommand{\\Name}{value}`` definitions, values brace-matched (they may span lines)."""
    out = {}
    for match in re.finditer(r"\\(?:re)?newcommand\*?\{?\\([A-Za-z]+)\}?(?:\[\d\])?\{", tex):
        depth, i = 1, match.end()
        while depth:
            if tex[i] == "\\":  # a control sequence or an escaped brace: skip the next character
                i += 1
            else:
                depth += {"{": 1, "}": -1}.get(tex[i], 0)
            i += 1
        out[match.group(1)] = tex[match.end() : i - 1]
    return out


@pytest.fixture(scope="module")
def paper() -> str:
    return _strip_comments((PAPER / "paper.tex").read_text())


@pytest.fixture(scope="module")
def numbers() -> str:
    assert NUMBERS.is_file(), "paper/generated/numbers.tex is missing: run python experiments/paper_numbers.py"
    findings = PAPER / "generated" / "findings.tex"  # experiments/findings.py: the peers section's macros
    return NUMBERS.read_text() + (findings.read_text() if findings.is_file() else "")


def test_every_generated_macro_the_paper_uses_is_defined(paper: str, numbers: str) -> None:
    own = set(_definitions(paper))
    generated = set(_definitions(numbers))
    used = set(re.findall(r"\\([A-Za-z]+)", paper))
    wanted = {name for name in used if name[0].isupper()} - own - LATEX_COMMANDS
    missing = sorted(wanted - generated)
    assert not missing, f"paper.tex uses macros that numbers.tex does not define: {missing}"


def test_generated_macro_names_are_letters_only(numbers: str) -> None:
    names = re.findall(r"\\newcommand\{\\([^}]*)\}", numbers)
    assert names, "numbers.tex defines no macros"
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z]+", n)]
    assert not bad
    assert len(names) == len(set(names)), "a macro is defined twice"
    values = _definitions(numbers)
    assert not [n for n, v in values.items() if re.search(r"\bnan\b|\binf\b|None", v)], "a blank or NaN value"


def test_every_included_figure_exists(paper: str, numbers: str) -> None:
    values = _definitions(numbers)
    roots = re.findall(r"\\graphicspath\{((?:\{[^}]*\})+)\}", numbers + paper)
    dirs = [PAPER / d for group in roots for d in re.findall(r"\{([^}]*)\}", group)] or [PAPER]
    targets = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", paper)
    assert targets, "the paper includes no figures"
    for target in targets:
        if target.startswith("\\"):
            assert target[1:] in values, f"figure macro {target} is not defined in numbers.tex"
            target = values[target[1:]]
        candidates = [d / (target + ext) for d in dirs for ext in ("", ".pdf", ".png", ".jpg")]
        assert any(c.is_file() for c in candidates), f"figure {target!r} not found under {[str(d) for d in dirs]}"


def test_every_citation_is_in_the_bibliography(paper: str) -> None:
    bib = (PAPER / "refs.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    cited = set()
    for group in re.findall(r"\\cite[a-z]*\*?(?:\[[^\]]*\]){0,2}\{([^}]*)\}", paper):
        cited |= {k.strip() for k in group.split(",")}
    assert cited, "the paper cites nothing"
    assert not sorted(cited - keys), f"cited but not in refs.bib: {sorted(cited - keys)}"


def test_theory_tables_match_the_exponent_table(numbers: str) -> None:
    """The paper's exponent tables and predictions are those scaling.table gives now (regenerate if not)."""
    gen = _load_generator()
    fresh = gen.Macros()
    gen.theory(fresh)
    written = _definitions(numbers)
    stale = [name for name, value in fresh.values.items() if written.get(name) != value]
    assert not stale, f"numbers.tex is stale for {stale}: rerun python experiments/paper_numbers.py"


def test_missing_artifact_is_an_error_naming_it(tmp_path: Path) -> None:
    gen = _load_generator()
    with pytest.raises(gen.MissingArtifactError, match=r"summary\.json"):
        gen.generate(gen.Source(tmp_path, quick=True))


@pytest.mark.parametrize(("n", "words"), [(32, "ThirtyTwo"), (64, "SixtyFour"), (256, "TwoHundredFiftySix"),
                                          (1024, "OneThousandTwentyFour"), (4096, "FourThousandNinetySix")])
def test_widths_are_spelled_in_macro_names(n: int, words: str) -> None:
    assert _load_generator().number_words(n) == words


def test_number_formats() -> None:
    gen = _load_generator()
    assert gen.fmt_fixed(-0.5926, 2, sign=True) == r"\ensuremath{-0.59}"
    assert gen.fmt_fixed(-0.001, 2, sign=True) == r"\ensuremath{+0.00}"
    assert gen.fmt_percent(0.17264) == r"17\%"
    assert gen.fmt_percent(1.998) == r"200\%"
    assert gen.fmt_percent(0.0104) == r"1.0\%"
    assert gen.fmt_sci(0.0137) == r"\ensuremath{1.4\times10^{-2}}"
    assert gen.fmt_exponent(1.5) == r"\ensuremath{3/2}"
    assert gen.camel("mup-table8") == "MupTableEight"
    with pytest.raises(ValueError, match="non-finite"):
        gen.fmt_loss(float("nan"))


def test_readme_results_block_is_the_generated_one() -> None:
    """The README quotes the full runs' numbers exactly as ``paper_numbers.py`` wrote them."""
    gen = _load_generator()
    readme = (ROOT / "README.md").read_text()
    results = (PAPER / "generated" / "results.md").read_text()
    if "from out/quick" in results:
        pytest.skip("results.md was generated from quick runs; the README keeps the full runs' block")
    assert gen.with_results(readme, results) == readme, "rerun python experiments/paper_numbers.py"
    with pytest.raises(ValueError, match="markers"):
        gen.with_results("no markers here", results)


def test_every_claim_of_the_paper_holds_on_the_committed_full_runs() -> None:
    """Each sentence of paper.tex listed in CLAIMS is true of experiments/results/ (a revised artifact that
    contradicts the text fails here, not only when someone regenerates the numbers)."""
    gen = _load_generator()
    loaded = {e.name: gen.Source(gen.RESULTS, quick=False).load(e.name, e.filename) for e in gen.EXPERIMENTS}
    assert gen.check_claims(loaded) == []
    broken = {**loaded, "transfer_gpt": {**loaded["transfer_gpt"], "gap_mup_best": -1.0}}
    assert gen.check_claims(broken), "a claim about the GPT's gap to SP should fail when the gap flips sign"


def test_readme_findings_block_is_the_generated_one(tmp_path: Path) -> None:
    """The README's peers / ablation / alignment / horizon tables are exactly what ``findings.py`` makes of
    the committed summaries; a changed summary value changes the block."""
    spec = importlib.util.spec_from_file_location("findings", ROOT / "experiments" / "findings.py")
    assert spec is not None and spec.loader is not None
    findings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(findings)
    readme = (ROOT / "README.md").read_text()
    md = findings.block()
    assert findings.with_block(readme, md) == readme, "rerun python experiments/findings.py"
    assert (PAPER / "generated" / "findings.tex").read_text() == findings.latex(), "rerun experiments/findings.py"
    peers = json.loads((ROOT / "experiments" / "results" / "peers" / "summary.json").read_text())
    peers["mlp_adam_mup_drift"] = 9.87
    (tmp_path / "peers").mkdir()
    (tmp_path / "peers" / "summary.json").write_text(json.dumps(peers))
    changed = findings.block(tmp_path)
    assert "+9.87" in changed and "+9.87" not in md and "Not yet run: ablation, alignment, horizon" in changed

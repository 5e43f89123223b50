#!/usr/bin/env bash
# Build paper/paper.pdf from paper.tex, refs.bib and generated/numbers.tex.
#   bash paper/build.sh          build (installs Debian's LaTeX packages if latexmk is missing)
#   bash paper/build.sh --clean  remove LaTeX's intermediate files first
# The numbers come from `python experiments/run_all.py --quick|--full` (or experiments/paper_numbers.py
# on existing artifacts). Fails if the log reports an undefined reference, citation or control sequence.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v latexmk >/dev/null 2>&1; then
  echo "latexmk not found: installing Debian's texlive packages" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    latexmk lmodern texlive-latex-base texlive-latex-recommended texlive-latex-extra
fi

if [ ! -f generated/numbers.tex ]; then
  echo "paper/generated/numbers.tex is missing: run 'python experiments/paper_numbers.py' (existing full" >&2
  echo "artifacts) or 'python experiments/run_all.py --quick|--full' first" >&2
  exit 1
fi

if [ "${1:-}" = "--clean" ]; then
  latexmk -C paper.tex >/dev/null
fi

# -halt-on-error: a LaTeX error stops the build instead of producing a PDF with holes in it.
latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error paper.tex >latexmk.log 2>&1 || {
  grep -E "^(.*:[0-9]+:|!)" -A3 paper.log latexmk.log 2>/dev/null | head -40 >&2 || true
  echo "paper/build.sh: latexmk failed; see paper/paper.log" >&2
  exit 1
}

# latexmk reruns until references settle; anything still undefined is a real error.
problems=$(grep -E "undefined|Undefined|multiply defined|Citation .* undefined|There were undefined" paper.log \
  | grep -v "^Package rerunfilecheck" || true)
if grep -q "Warning--" paper.blg 2>/dev/null; then
  problems="$problems"$'\n'"$(grep "Warning--" paper.blg)"
fi
if [ -n "${problems//[$'\n ']/}" ]; then
  echo "$problems" >&2
  echo "paper/build.sh: undefined references, citations or bibliography warnings (above)" >&2
  exit 1
fi
pages=$(grep -oE "Output written on paper.pdf \(([0-9]+) pages?" paper.log | grep -oE "[0-9]+ page" | grep -oE "[0-9]+" || echo "?")
echo "built paper/paper.pdf ($pages pages)"

"""Formatting for the paper: the macros of ``numbers.tex``, numbers as LaTeX, summary values by their keys.

Macro names are ASCII letters only (:func:`camel` spells digits out); every number goes through one of the
``fmt_*`` functions, which refuse a non-finite number; :func:`tex_to_md` turns a formatted cell back into
Markdown for the README.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from scaling.table import Power


@dataclass
class Macros:
    """The macros of ``numbers.tex``, in order, each with a comment saying where it comes from."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    preamble: list[str] = field(default_factory=list)

    def add(self, name: str, value: str, source: str = "") -> None:
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise ValueError(f"macro name {name!r} must be ASCII letters only")
        if name in self.values:
            raise ValueError(f"macro \\{name} defined twice")
        self.values[name] = value
        self.sources[name] = source

    def tex(self, header: str) -> str:
        lines = [f"% {line}" if line else "%" for line in header.splitlines()]
        lines += self.preamble
        source = None
        for name, value in self.values.items():
            if self.sources[name] != source:
                source = self.sources[name]
                lines.append(f"% --- {source}")
            lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")
        return "\n".join(lines) + "\n"


def camel(text: str) -> str:
    """``mup-table8`` -> ``MupTableEight``; ``transfer_mlp`` -> ``TransferMlp`` (digits spelled out)."""
    words = re.findall(r"[A-Za-z]+|\d+", text)
    return "".join(number_words(int(w)) if w.isdigit() else w[:1].upper() + w[1:].lower() for w in words)


_ONES = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven", "Twelve",
         "Thirteen", "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen", "Nineteen")
_TENS = ("", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety")


def number_words(n: int) -> str:
    """An integer in CamelCase words: 32 -> ``ThirtyTwo``, 1024 -> ``OneThousandTwentyFour``."""
    if n < 0:
        return "Minus" + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (_ONES[n % 10] if n % 10 else "")
    for size, word in ((10**6, "Million"), (1000, "Thousand"), (100, "Hundred")):
        if n >= size:
            rest = n % size
            return number_words(n // size) + word + (number_words(rest) if rest else "")
    raise AssertionError(n)  # pragma: no cover


def fmt_fixed(x: float, digits: int = 2, sign: bool = False) -> str:
    """``0.1707`` -> ``0.17`` (``+0.17`` with ``sign``), in math mode so that a minus sign is one."""
    _finite(x)
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    if float(s) == 0:  # -0.00 -> 0.00
        s = ("+" if sign else "") + f"{0:.{digits}f}"
    return rf"\ensuremath{{{s}}}"


def fmt_percent(x: float) -> str:
    """A relative quantity as a percentage, two significant digits below 100\\%: ``0.1726`` -> ``17\\%``."""
    _finite(x)
    p = 100 * x
    s = f"{p:.0f}" if abs(p) >= 9.95 else f"{p:.1f}"  # 17%, 220%; 1.0%, 0.3%
    if float(s) == 0:
        s = "0.0"
    return (rf"\ensuremath{{{s}}}" if s.startswith("-") else s) + r"\%"


def fmt_sci(x: float, digits: int = 2) -> str:
    """``0.0137`` -> ``1.4\\times10^{-2}``, ``0.01`` -> ``10^{-2}``, ``0.5`` -> ``0.5``; in math mode."""
    _finite(x)
    if x == 0:
        return r"\ensuremath{0}"
    exp = math.floor(math.log10(abs(x)))
    mant = round(x / 10**exp, digits - 1)
    if abs(mant) >= 10:
        mant, exp = mant / 10, exp + 1
    text = f"{mant:.{digits - 1}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if exp in (-1, 0, 1, 2):
        plain = f"{x:.{max(digits - 1 - exp, 0)}f}"
        return rf"\ensuremath{{{plain.rstrip('0').rstrip('.') if '.' in plain else plain}}}"
    if text in ("1", "-1"):
        return rf"\ensuremath{{{text[:-1]}10^{{{exp}}}}}"
    return rf"\ensuremath{{{text}\times10^{{{exp}}}}}"


def fmt_loss(x: float) -> str:
    """A loss with three decimals below 1, two above (``0.280``, ``1.10``)."""
    _finite(x)
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.3f}"


def fmt_ratio(x: float) -> str:
    """A time ratio with two decimals (``1.05``)."""
    return fmt_fixed(x, 2)


def _frac(x: float) -> str:
    """``x`` as a fraction with a small denominator: ``-0.5`` -> ``-1/2``, ``2.0`` -> ``2``."""
    f = Fraction(x).limit_denominator(8)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def fmt_exponent(x: float) -> str:
    """A theoretical exponent as a fraction in math mode: ``-0.5`` -> ``$-1/2$``."""
    return rf"\ensuremath{{{_frac(x)}}}"


def fmt_power(p: Power) -> str:
    """A width monomial in LaTeX math: ``m_in^-1/2 m_out`` -> ``m_{\\rm in}^{-1/2} m_{\\rm out}``."""
    parts = []
    for sym, e in (("m_{\\mathrm{in}}", p.fan_in), ("m_{\\mathrm{out}}", p.fan_out)):
        if e == 0:
            continue
        if e == 1:
            parts.append(sym)
        else:
            parts.append(f"{sym}^{{{_frac(e)}}}")
    return "$" + ("".join(parts) if parts else "1") + "$"


def _finite(x: float) -> None:
    if x is None or not math.isfinite(x):
        raise ValueError(f"cannot format a non-finite number {x!r} for the paper")


def tex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text (paths, revisions, commands)."""
    out = text.replace("\\", r"\textbackslash{}")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    return out.replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")


def fmt_value(key: str, value: Any) -> str:
    """A summary value formatted by what its key says it is (see ``experiments/common.py``'s keys)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        if re.fullmatch(r"\d+(,\d+)+", value):  # a list of widths
            return widths_list(int(w) for w in value.split(","))
        return tex_escape(value)
    tokens = key.split("_")
    if "flops" in tokens:
        return fmt_sci(float(value))
    if isinstance(value, int):
        return f"{value:,}".replace(",", r"\,") if abs(value) >= 10_000 else str(value)
    x = float(value)
    if "loss" in tokens:
        return fmt_loss(x)
    if "log2" in tokens or (tokens[0] != "target" and tokens[-1] in ("lo", "hi") and "grid" in tokens):
        return fmt_fixed(x, 2, sign="shift" in tokens)
    if "drift" in tokens:
        return fmt_fixed(x, 2, sign=True)
    if "seconds" in tokens:
        return fmt_fixed(x, 0 if x >= 10 else 1)
    if "ratio" in tokens:
        return fmt_fixed(x, 2)
    if "regret" in tokens or tokens[0] == "gap":
        return fmt_percent(x)
    if tokens[-1] == "lr":
        return fmt_sci(x)
    if x == round(x) and abs(x) < 1e6:
        return fmt_fixed(x, 0) if x < 0 else str(int(x))
    return fmt_sig(x, 3)


def fmt_sig(x: float, digits: int = 3) -> str:
    """``digits`` significant digits, plain notation for moderate sizes, in math mode."""
    _finite(x)
    if x != 0 and not 1e-3 <= abs(x) < 1e5:
        return fmt_sci(x, digits)
    return rf"\ensuremath{{{float(f'{x:.{digits}g}'):g}}}"


def widths_list(widths: Iterable[int]) -> str:
    """``32, 64 and 128``."""
    ws = sorted(widths)
    return ", ".join(str(w) for w in ws[:-1]) + (" and " if len(ws) > 1 else "") + str(ws[-1])


def edge_mark(edge: str | None) -> str:
    return {"low": r"$^{\leftarrow}$", "high": r"$^{\rightarrow}$"}.get(edge or "", "")


def fixed_or_na(x: Any, digits: int = 2, sign: bool = False) -> str:
    return "n/a" if x is None else fmt_fixed(float(x), digits, sign)


def percent_or_na(x: Any) -> str:
    return "n/a" if x is None else fmt_percent(float(x))


def loss_or_na(x: Any) -> str:
    return "n/a" if x is None else fmt_loss(float(x))


def tex_to_md(tex: str) -> str:
    """A LaTeX cell as Markdown text."""
    out = re.sub(r"\\ensuremath\{(.*?)\}", r"\1", tex).replace(r"\%", "%").replace(r"\,", ",")
    out = out.replace(r"$\mu$P", "muP").replace(r"$m^{-1/2}$", "m^-1/2").replace("$", "")
    return out.replace(r"^{\leftarrow}", " (grid edge)").replace(r"^{\rightarrow}", " (grid edge)")

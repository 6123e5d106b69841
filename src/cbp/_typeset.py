"""Numbers, vectors and matrices of a trace as plain text and as TeX.

:mod:`cbp.explain` builds a trace as a list of :class:`Step`; this module
lays the steps out as aligned text (a terminal, ``print``) or as HTML,
Markdown and LaTeX with TeX equations (a notebook typesets them with the
MathJax it carries).  Nothing here knows backpropagation.
"""
import html
from typing import List, NamedTuple, Optional

import numpy as np


class Row(NamedTuple):
    """One labelled value of a step: ``text`` and ``tex`` name it; ``value`` may be None."""

    text: str
    tex: str
    value: Optional[np.ndarray] = None


class Step(NamedTuple):
    """A titled equation and the values it produces."""

    title: str
    text: str
    tex: str
    rows: List[Row]


class Formatter:
    """Values with ``digits`` decimals, or ``digits`` significant digits when small.

    Fixed decimals match the notes' printed numbers (0.0033, −0.1054); a value
    too small to keep two significant digits that way (below
    10^(1 − digits)) or very large (10^6 and up) is written with ``digits``
    significant digits instead, so that no nonzero value prints as 0.0000.
    """

    def __init__(self, digits, max_columns):
        self.digits = digits
        self.max_columns = max_columns

    def number(self, v):
        v = float(v)
        big = abs(v) >= 1e6
        small = v != 0 and abs(v) < 10.0 ** (1 - self.digits)
        if np.isfinite(v) and (big or small):
            s = f"{v:.{max(self.digits, 1)}g}"
        else:
            s = f"{v:.{self.digits}f}"
        return s[1:] if s.startswith("-") and float(s) == 0 else s

    def tex_number(self, v):
        s = self.number(v)
        if s in ("inf", "-inf", "nan"):
            return {"inf": r"\infty", "-inf": r"-\infty", "nan": r"\mathrm{NaN}"}[s]
        if "e" in s:
            mantissa, exponent = s.split("e")
            return rf"{mantissa}\times 10^{{{int(exponent)}}}"
        return s

    def _stats(self, arr, number):
        a = np.asarray(arr, dtype=np.float64)
        shape = f"{a.shape[0]} values" if a.ndim == 1 else f"{a.shape[0]}×{a.shape[1]} matrix"
        with np.errstate(over="ignore", invalid="ignore"):
            norm = np.linalg.norm(a) if np.isfinite(a).all() else np.inf
            if np.isinf(norm) and np.isfinite(a).all():
                # ‖a‖ past the float range: scaled by the largest entry first.
                top = np.max(np.abs(a))
                norm = top * np.linalg.norm(a / top)
        return shape, number(norm), number(np.min(a)), number(np.max(a))

    def summarised(self, arr):
        return max(np.shape(arr), default=0) > self.max_columns

    # -- text ---------------------------------------------------------------

    def entry(self, label, arr, indent=0):
        pad = " " * indent
        arr = np.asarray(arr)
        if self.summarised(arr):
            shape, norm, low, high = self._stats(arr, self.number)
            return [f"{pad}{label} ({shape}: norm {norm}, min {low}, max {high})"]
        cells = np.vectorize(self.number, otypes=[object])(arr) if arr.size else arr
        width = max((len(c) for c in np.ravel(cells)), default=0)
        if arr.ndim == 1:
            body = "  ".join(c.rjust(width) for c in cells)
            return [f"{pad}{label} = [{body}]ᵀ"]
        rows = ["  ".join(c.rjust(width) for c in row) for row in cells]
        head = f"{pad}{label} = "
        out = [f"{head}[[{rows[0]}]" + ("]" if len(rows) == 1 else "")]
        for k, row in enumerate(rows[1:], start=2):
            out.append(" " * len(head) + f" [{row}]" + ("]" if k == len(rows) else ""))
        return out

    def text(self, head, legend, steps):
        lines = list(head) + ["Legend: " + "; ".join(t for t, _ in legend), ""]
        for step in steps:
            lines.append(f"{step.title}: {step.text}" if step.text else step.title)
            indent = 2 if step.text else 0
            for row in step.rows:
                if row.value is None:
                    lines.append(" " * indent + row.text)
                else:
                    lines += self.entry(row.text, row.value, indent=indent)
            lines.append("")
        return "\n".join(lines[:-1])

    # -- TeX ----------------------------------------------------------------

    def tex_value(self, arr):
        arr = np.asarray(arr)
        if self.summarised(arr):
            shape, norm, low, high = self._stats(arr, self.number)
            return rf"\text{{({shape}: norm {norm}, min {low}, max {high})}}"
        cells = np.vectorize(self.tex_number, otypes=[object])(arr) if arr.size else arr
        if arr.ndim == 1:
            return r"\begin{bmatrix}" + " & ".join(cells) + r"\end{bmatrix}^{\mathsf T}"
        body = r" \\ ".join(" & ".join(row) for row in cells)
        return r"\begin{bmatrix}" + body + r"\end{bmatrix}"

    def tex_row(self, row):
        if row.value is None:
            return row.tex
        sep = r"\;" if self.summarised(row.value) else " = "
        return f"{row.tex}{sep}{self.tex_value(row.value)}"

    def html(self, head, legend, steps):
        """HTML whose equations are TeX between \\( \\): notebooks typeset them with MathJax."""
        def esc(text):
            return html.escape(text, quote=False)

        def math(tex, display=False):
            return esc(r"\(" + (r"\displaystyle " if display else "") + tex + r"\)")
        out = ['<div class="cbp-trace" style="line-height:1.6">',
               f"<p><strong>{esc(head[0])}</strong><br>{esc(' '.join(head[1:]))}</p>",
               "<p>" + "<br>".join(math(t) for _, t in legend) + "</p>"]
        for step in steps:
            equation = f": {math(step.tex)}" if step.tex else ""
            out.append(f"<p><strong>{esc(step.title)}</strong>{equation}</p>")
            if step.rows:
                out.append('<div style="margin-left:2em">')
                out += [f"<div>{math(self.tex_row(r), display=True)}</div>" for r in step.rows]
                out.append("</div>")
        out.append("</div>")
        return "\n".join(out)

    def markdown(self, head, legend, steps):
        out = [f"**{head[0]}**  ", " ".join(head[1:]), ""]
        out += ["- $" + t + "$" for _, t in legend] + [""]
        for step in steps:
            out.append(f"**{step.title}**" + (f": ${step.tex}$" if step.tex else ""))
            out.append("")
            out += ["$$" + self.tex_row(r) + "$$" for r in step.rows]
            if step.rows:
                out.append("")
        return "\n".join(out)

    def latex(self, head, legend, steps):
        out = [r"\textbf{" + head[0].replace("_", r"\_") + "}"]
        out += [t for _, t in legend]
        for step in steps:
            title = r"\textbf{" + step.title + "}"
            out.append(title + (r"\quad " + step.tex if step.tex else ""))
            out += [r"\quad " + self.tex_row(r) for r in step.rows]
        return "$$\\begin{array}{l}\n" + " \\\\\n".join(out) + "\n\\end{array}$$"

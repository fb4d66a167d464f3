"""Emission: kernel specifications -> numba source text (SymPy printing + cse + Jinja2).

Stages (each a short function):
  ``lower``   a kernel spec's (target, expression) lists -> printed statements after cse;
  ``render``  statements -> kernel source through the kernel family's template;
  ``assemble`` kernels -> one module with a provenance header (inputs hash + content hash).

Emission is deterministic: no timestamps, canonical cse ordering, fixed printer settings, so the
same inputs give byte-identical files (``msat derive --check`` relies on it).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import jinja2
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

TEMPLATE_DIR = Path(__file__).with_name("templates")
#: functions that printed matrix code may call (MatrixPrinter), each from templates/_<name>.j2, emitted
#: once into generated/lowered.py and imported from there by the modules whose kernels call them
HELPERS = ("row_quadratic", "weighted_gram")
LOWERED = "lowered"
FAMILIES = ("spectral", "row_map", "pairwise", "scalar", "numpy_function", "numpy_lines", "densities", "nngp")


class KernelPrinter(PythonCodePrinter):
    """Python printer whose output numba compiles: math.* functions, float literals as written."""

    def __init__(self):
        super().__init__({"standard": "python3", "fully_qualified_modules": True})


_PRINTER = KernelPrinter()


def code(expr) -> str:
    return _PRINTER.doprint(expr)


class MatrixPrinter(NumPyPrinter):
    """NumPy printer for matrix expressions: products with @, scalars multiplied, no inverses
    (docs/theory.md: never invert a kernel, so an Inverse reaching the printer is an error)."""

    def __init__(self):
        super().__init__({"fully_qualified_modules": True})

    def _print_MatMul(self, expr):
        coeff, mats = expr.as_coeff_matrices()
        body = self._chain(list(mats))
        return body if coeff == 1 else f"({self._print(coeff)}) * ({body})"

    def _chain(self, mats):
        """A product in the cheapest order when a factor is a vector (a @ a.T @ Phi as a @ (a.T @ Phi),
        never the outer product), else left to right: the matrix-chain order for sizes 1 and 'large'."""
        dims = [mats[0].shape[0]] + [m.shape[1] for m in mats]
        size = [1 if d == 1 else 1000 for d in dims]
        n = len(mats)
        cost = {(i, i): (0, None) for i in range(n)}
        for span in range(1, n):
            for i in range(n - span):
                j = i + span
                # ties go to the last split: left to right, as Python evaluates a @ b @ c
                cost[i, j] = min((cost[i, k][0] + cost[k + 1, j][0] + size[i] * size[k + 1] * size[j + 1], -k)
                                 for k in range(i, j))
                cost[i, j] = (cost[i, j][0], -cost[i, j][1])

        def emit(i, j):
            if i == j:
                return self.parenthesize(mats[i], 100)
            k = cost[i, j][1]
            right = emit(k + 1, j)
            return f"{emit(i, k)} @ " + (f"({right})" if k + 1 < j else right)
        return emit(0, n - 1)

    def _print_RowQuadratic(self, expr):
        return "row_quadratic(%s, %s)" % tuple(self._print(a) for a in expr.args)

    def _print_WeightedGram(self, expr):
        return "weighted_gram(%s, %s)" % tuple(self._print(a) for a in expr.args)

    def _print_HadamardPower(self, expr):
        return "numpy.power(%s, %s)" % (self._print(expr.base), self._print(expr.exp))

    def _print_Inverse(self, expr):
        raise ValueError("emitted matrix code must not invert a matrix")

    def _print_OneMatrix(self, expr):
        return "numpy.ones((%s, %s))" % (self._print_dim(expr.shape[0]), self._print_dim(expr.shape[1]))

    def _print_Identity(self, expr):
        return "numpy.eye(%s)" % self._print_dim(expr.shape[0])

    def _print_dim(self, d):
        return f"{d}" if d.is_Integer else f"{d}"


_MATRIX_PRINTER = MatrixPrinter()


def numpy_code(expr) -> str:
    return _MATRIX_PRINTER.doprint(expr)


@dataclass
class Statement:
    """``target op expr`` with op in {'=', '+='}; target is printed verbatim (array element)."""

    target: str
    expr: sp.Expr
    op: str = "="


@dataclass
class KernelSpec:
    """What to emit for one kernel: its family (template), signature and statements.

    spectral: ``node`` statements run once per node j (s, chi or t known), ``mode`` statements once
    per eigenmode k inside it (lam known). row_map: ``node`` statements once per row j.
    """

    name: str
    family: str
    args: list
    doc: str
    node: list = field(default_factory=list)
    mode: list = field(default_factory=list)
    prelude: list = field(default_factory=list)  # (local, expr) defined before cse, per node
    node_vars: list = field(default_factory=lambda: [("s", "s_nodes"), ("chi", "chi_nodes")])
    rows: str = ""
    mode_locals: list = field(default_factory=list)  # per-mode array elements, "<array>_k"
    returns: str = ""
    extra: dict = field(default_factory=dict)  # template-specific statement groups


def cse_lines(statements, prefix: str):
    """cse over the right-hand sides; returns printed lines (temporaries first)."""
    if not statements:
        return []
    exprs = [sp.sympify(st.expr) for st in statements]
    temps, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(prefix), order="canonical")
    lines = [f"{code(sym)} = {code(val)}" for sym, val in temps]
    for st, ex in zip(statements, reduced):
        lines.append(f"{st.target} {st.op} {code(ex)}")
    return lines


def lower(spec: KernelSpec) -> dict:
    """Template context for a kernel: printed, cse-reduced statements.

    spectral: node and mode statements; row_map / pairwise / scalar: one statement list (after
    the prelude); every list of Statements in ``extra`` is lowered the same way under its key;
    numpy_function: matrix expressions printed for NumPy (no cse, no numba);
    numpy_lines: NumPy lines already printed from structured terms (derive.kernels_field).
    """
    ctx = {"name": spec.name, "args": spec.args, "doc": spec.doc}
    for key, value in spec.extra.items():
        if isinstance(value, list) and value and isinstance(value[0], Statement):
            ctx[key] = cse_lines(value, f"{key}_")
        else:
            ctx[key] = value
    if spec.family == "spectral":
        prelude = [f"{code(sp.Symbol(n))} = {code(e)}" for n, e in spec.prelude]
        ctx["node_vars"] = spec.node_vars
        ctx["node_statements"] = prelude + cse_lines(spec.node, "u")
        ctx["mode_statements"] = [f"{v} = {v[:-2]}[k]" for v in spec.mode_locals]
        ctx["mode_statements"] += cse_lines(spec.mode, "x")
    elif spec.family in ("row_map", "pairwise", "scalar"):
        prelude = [f"{n} = {src if isinstance(src, str) else code(src)}" for n, src in spec.prelude]
        ctx["statements"] = prelude + cse_lines(spec.node, "x")
        if spec.family == "row_map":
            ctx["rows"] = spec.rows
        if spec.family == "scalar":
            ctx["returns"] = spec.returns
    elif spec.family == "numpy_function":
        ctx["statements"] = [f"{st.target} = {numpy_code(st.expr)}" for st in spec.node]
        ctx["returns"] = spec.returns
    elif spec.family == "numpy_lines":  # lines printed by the spec's own module (kernels_field)
        ctx["statements"] = list(spec.extra["lines"])
        ctx["returns"] = spec.returns
    elif spec.family in ("densities", "nngp"):
        pass  # statement groups lowered by the spec's module (one group per activation)
    else:
        raise ValueError(f"unknown kernel family {spec.family!r}")
    return ctx


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(spec: KernelSpec, env: jinja2.Environment | None = None) -> str:
    env = env or environment()
    return env.get_template(f"{spec.family}.py.j2").render(**lower(spec)).rstrip() + "\n"


def versions() -> dict:
    def v(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:  # running from a source tree
            return "unknown"

    return {"msat": v("msat"), "sympy": sp.__version__, "jinja2": jinja2.__version__}


def template_sources() -> str:
    return "".join(p.read_text() for p in sorted(TEMPLATE_DIR.glob("*.j2")))


def inputs_hash(specs, order, derivation: str) -> str:
    """Hash of everything that changes the output: expressions, order, templates, versions."""
    h = hashlib.sha256()
    h.update(f"{derivation}|{order}|{sorted(versions().items())}".encode())
    h.update(template_sources().encode())
    for spec in specs:
        h.update(spec.name.encode())
        for st in spec.node + spec.mode:
            h.update(f"{st.target}{st.op}{sp.srepr(st.expr)}".encode())
        for n, e in spec.prelude:
            h.update(f"{n}={e if isinstance(e, str) else sp.srepr(e)}".encode())
        for key, value in sorted(spec.extra.items()):
            items = value if isinstance(value, list) else [value]
            for st in items:
                body = f"{st.target}{st.op}{sp.srepr(st.expr)}" if isinstance(st, Statement) else str(st)
                h.update(f"{key}:{body}".encode())
    return h.hexdigest()


def content_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def assemble(title: str, doc: str, derivation: str, order, nmax, specs) -> str:
    """One generated module: provenance header + module body of rendered kernels."""
    env = environment()
    kernels = [render(s, env).rstrip("\n") for s in specs]
    # the lowered nodes' helpers (generated/lowered.py) that printed kernels call
    helpers = [h for h in HELPERS if any(f"{h}(" in k for k in kernels)]
    body = env.get_template("module.py.j2").render(
        doc=doc, order=order, nmax=nmax, kernels=kernels, helpers=helpers
    )
    header = env.get_template("header.j2").render(
        title=title,
        derivation=derivation,
        order=order,
        inputs_hash=inputs_hash(specs, order, derivation),
        content_hash=content_hash(body),
        **versions(),
    )
    return header + body


def assemble_lowered() -> str:
    """generated/lowered.py: the BLAS helpers of the lowered matrix nodes (derive.matcalc), once for
    every module that imports them; its inputs are the templates and versions alone."""
    env = environment()
    body = env.get_template(f"{LOWERED}.py.j2").render(
        doc="Lowered matrix nodes of derive.matcalc: the helpers printed matrix code calls.", helpers=HELPERS
    )
    derivation = "derive.matcalc.RowQuadratic, derive.matcalc.WeightedGram (templates _<helper>.j2)"
    header = env.get_template("header.j2").render(
        title=f"{LOWERED}: helpers of the lowered matrix nodes", derivation=derivation, order="-",
        inputs_hash=inputs_hash([], "-", derivation), content_hash=content_hash(body), **versions(),
    )
    return header + body


def split_header(text: str):
    """(header lines, body) of a generated file."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        i += 1
    return lines[:i], "".join(lines[i:])


def verify_content(text: str) -> bool:
    """True when the body still matches the content hash in its header (no hand edits)."""
    header, body = split_header(text)
    for line in header:
        if line.startswith("# content-sha256:"):
            return line.split(":", 1)[1].strip() == content_hash(body)
    return False

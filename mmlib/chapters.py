"""Book chapters: the one list of them, and running one through papermill with checked parameters.

``CHAPTERS`` is the single place that says which notebooks make the book, in order. Adding a
chapter is one line here (plus its entry in ``book/_toc.yml``). Each chapter's source of truth is
``notebooks/NAME.py`` (jupytext percent format) whose first code cell is tagged ``parameters``.

    python -m mmlib chapter --list                     # chapters and their parameters
    python -m mmlib chapter quickstart -p split_seeds 3    # rerun one chapter with a parameter
    python -m mmlib chapter --all                      # every chapter, in book order

Papermill only *warns* about a parameter the notebook does not declare; :func:`run_chapter`
refuses it instead and lists the valid names with their defaults, so a typo never silently runs
the defaults. Values given as text (``-p epochs 5``) are read the way papermill's command line
reads them (``True``/``False``/``None``, ints, floats, otherwise text) and then coerced to the
type of the default: a string parameter stays a string (``-p noise 2`` is ``"2"``), a float
parameter accepts ``5``; counts (``seeds``, ``epochs``, ...) below their smallest sensible value are refused.

A chapter runs into a uniquely named hidden notebook beside its published one and replaces
``book/chapters/NAME.ipynb`` only when every cell succeeded. A chapter that fails, is killed or
interrupted leaves the last good notebook in place, its own copy as ``NAME.failed.ipynb`` (outside
the book's table of contents), and a few lines naming the failing cell and the error; Ctrl-C is
one line and exit status 130.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

# The book's chapters, in reading order. One line per chapter.
CHAPTERS: list[str] = [
    "quickstart",
    "method",
    "main_comparison",
    "component_ablation",
    "modality_ablation",
    "frozen_backbones",
    "contribution_evolution",
    "feature_distributions",
    "order_upper_bound",
    "missing_modalities",
    "av_evidence",
    "decision_layer",
    "ambiguities",
    "performance",
    "tuning",
    "report",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "book" / "chapters"


# Count parameters a chapter may declare, and the smallest value that means something.
AT_LEAST = {"seeds": 1, "split_seeds": 1, "epochs": 1, "repeats": 1, "stat_seeds": 1, "baseline_seeds": 1}


class ChapterError(ValueError):
    """A chapter name or parameter that cannot be run; the message says what is valid."""


class ChapterFailed(RuntimeError):
    """A chapter whose execution stopped; the message names the cell, the error and the failed copy."""


@dataclass(frozen=True)
class Parameter:
    """One entry of a chapter's ``parameters`` cell."""

    name: str
    default: Any
    type_name: str  # the annotation as written (``int``, ``str``), or the default's type
    help: str  # the trailing comment

    def describe(self) -> str:
        text = f"{self.name}: {self.type_name} = {self.default!r}"
        return f"{text}  # {self.help}" if self.help else text


def notebook_path(name: str, notebook_dir: Path = NOTEBOOK_DIR) -> Path:
    path = Path(notebook_dir) / f"{name}.py"
    if not path.is_file():
        known = sorted(p.stem for p in Path(notebook_dir).glob("*.py"))
        raise ChapterError(
            f"no chapter {name!r}: {path} does not exist; chapters in the book are {CHAPTERS} "
            f"(notebooks found: {known})"
        )
    return path


def read_notebook(name: str, notebook_dir: Path = NOTEBOOK_DIR):
    """The chapter as an nbformat notebook, read from its percent-format ``.py`` with jupytext."""
    import jupytext

    nb = jupytext.read(notebook_path(name, notebook_dir))
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    return nb


def parameters_of(nb) -> dict[str, Parameter]:
    """The parameters declared in the cell tagged ``parameters``, with defaults and comments."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ChapterError("the notebook has no code cell tagged 'parameters'; tag its first code cell so papermill "
                           "can inject values")
    source = cells[0].source
    lines = source.splitlines()
    params: dict[str, Parameter] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation, value = node.target.id, ast.unparse(node.annotation), node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation, value = node.targets[0].id, None, node.value
        else:
            continue
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            default = ast.unparse(value)
        line = lines[node.end_lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line[node.end_col_offset :] else ""
        params[name] = Parameter(name, default, annotation or type(default).__name__, comment)
    return params


def chapter_parameters(name: str, notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, Parameter]:
    return parameters_of(read_notebook(name, notebook_dir))


def parse_cli_value(text: str) -> Any:
    """``-p KEY VALUE`` text read as papermill's command line reads it."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def coerce(param: Parameter, value: Any) -> Any:
    """``value`` converted to the type of ``param``'s default; a clear error when it cannot be."""
    default = param.default
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, str):
            return value if isinstance(value, str) else ("" if value is None else str(value))
    except (TypeError, ValueError):
        raise ChapterError(
            f"parameter {param.name!r} expects {param.type_name} (default {default!r}), got {value!r}"
        ) from None
    return value


def check_parameters(name: str, declared: dict[str, Parameter], given: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown names (listing the valid ones with defaults) and coerce the rest."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        valid = "\n  ".join(p.describe() for p in declared.values())
        raise ChapterError(
            f"chapter {name!r} has no parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid parameters (with defaults) are:\n  {valid}"
        )
    checked = {key: coerce(declared[key], value) for key, value in given.items()}
    for key, value in checked.items():
        if key in AT_LEAST and value < AT_LEAST[key]:
            raise ChapterError(f"chapter {name!r}: parameter {key!r} must be at least {AT_LEAST[key]}, got {value!r}")
    return checked


def _venv_kernel_path() -> str:
    """A ``JUPYTER_PATH`` entry whose ``python3`` kernel is this interpreter.

    ``JUPYTER_PATH`` comes first in Jupyter's search order, so the chapter runs in the same
    environment as the caller (the project's ``.venv``), whatever kernels the user has installed.
    The kernel logs critical errors only: it shares our stderr, and on Ctrl-C it is shut down
    mid-cell, which it would log as a traceback under our one line (cell errors reach us as messages).
    """
    folder = Path(tempfile.gettempdir()) / f"mmlib-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"
    spec_dir = folder / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.log_level=CRITICAL"],
        "display_name": "Python 3 (mmlib)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    target = spec_dir / "kernel.json"
    text = json.dumps(spec, indent=1)
    if not target.is_file() or target.read_text() != text:
        partial = spec_dir / f"kernel.json.{os.getpid()}"
        partial.write_text(text)
        partial.replace(target)
    return str(folder)


def run_chapter(
    name: str,
    parameters: dict[str, Any] | None = None,
    output_dir: Path | str = DEFAULT_OUTPUT_DIR,
    notebook_dir: Path | str = NOTEBOOK_DIR,
    cwd: Path | str = REPO_ROOT,
    log_output: bool = False,
    progress_bar: bool = False,
) -> Path:
    """Execute ``notebooks/NAME.py`` with ``parameters`` and write ``OUTPUT_DIR/NAME.ipynb``.

    Unknown parameter names raise :class:`ChapterError` before anything runs. The notebook runs
    with its working directory at ``cwd`` (the repository root), so its relative paths
    (``results/...``, ``book/figures/...``) mean the same from ``make`` and from Python.
    Returns the path of the executed notebook. A failure raises :class:`ChapterFailed` and leaves
    ``OUTPUT_DIR/NAME.ipynb`` as it was (an interrupt is re-raised after the same cleanup).
    """
    import papermill

    from mmlib.results import file_mode

    nb = read_notebook(name, Path(notebook_dir))
    checked = check_parameters(name, parameters_of(nb), dict(parameters or {}))
    nb.metadata["mmlib"] = execution_environment()  # commit and device, for book/provenance.md
    output = Path(output_dir) / f"{name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=output.parent, prefix=f".{name}-", suffix=".ipynb")
    os.close(fd)
    os.chmod(partial, file_mode())
    os.environ.setdefault("TQDM_DISABLE", "1")
    kernels = _venv_kernel_path()
    existing = os.environ.get("JUPYTER_PATH", "")
    if kernels not in existing.split(os.pathsep):
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (kernels, existing) if p)
    # The kernel inherits our environment; a headless MPLBACKEND (Agg, set by test runners)
    # would stop figures from being captured as PNG outputs, so the kernel gets the inline one.
    saved_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        executed = papermill.execute_notebook(
            nb, partial, parameters=checked, kernel_name="python3", language="python",
            cwd=str(cwd), log_output=log_output, progress_bar=progress_bar,
        )
        _remove_injected_cell(executed, partial)
    except BaseException as error:
        os.replace(partial, failed_path(output))
        if not isinstance(error, Exception):
            raise
        raise ChapterFailed(describe_failure(name, error, output)) from None
    finally:
        if saved_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved_backend
    os.replace(partial, output)
    return output


def _remove_injected_cell(nb, path: str) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the rendered chapter shows its
    defaults, and book/provenance.md the values given (without the build machine's folders)."""
    import nbformat

    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def execution_environment() -> dict[str, Any]:
    """Commit, versions and device a chapter runs with (papermill records times and parameters)."""
    import torch

    from mmlib.results import environment_info

    return environment_info("cuda" if torch.cuda.is_available() else "cpu")


def failed_path(output: Path) -> Path:
    """Where the executed copy of a failed chapter is kept, beside its published notebook."""
    return output.with_name(f"{output.stem}.failed.ipynb")


def describe_failure(name: str, error: BaseException, output: Path) -> str:
    """A few lines: the failing cell and its error, where the failed copy is, what the book still shows."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        first_line = next((line for line in error.source.splitlines() if line.strip()), "")
        evalue = (error.evalue.strip().splitlines() or [""])[0]
        what = f"failed in cell {error.cell_index} (`{first_line.strip()[:80]}`): {error.ename}: {evalue}"
    else:
        what = f"failed: {type(error).__name__}: {(str(error).strip().splitlines() or ['(no message)'])[0]}"
    return (f"chapter {name} {what}\n  the executed copy with the error: {failed_path(output)}\n  "
            f"{last_good_run(output)}")


def describe_interrupt(name: str, output: Path) -> str:
    """One line for Ctrl-C: what the book still shows, and where the interrupted copy is."""
    return f"mmlib chapter: {name} interrupted (its copy: {failed_path(output)}); {last_good_run(output)}"


def last_good_run(output: Path) -> str:
    """Whether the published notebook ``output`` holds a good run, in words."""
    return (f"{output} still holds the last good run" if output.exists()
            else f"no good run of it exists yet ({output} was never written)")


def glued_values(notebook: Path | str) -> dict[str, Any]:
    """Values a notebook stored with ``myst_nb.glue``: name -> ``text/plain`` evaluated when literal."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    found: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            scrapbook = out.get("metadata", {}).get("scrapbook", {})
            key = scrapbook.get("name")
            if key is None:
                continue
            prefix = scrapbook.get("mime_prefix", "")  # glue(..., display=False) prefixes the mime types
            data = {mime.removeprefix(prefix): value for mime, value in out.get("data", {}).items()}
            text = data.get("text/plain")
            if text is None:
                found[key] = data
                continue
            try:
                found[key] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                found[key] = text
    return found


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mmlib chapter",
        description="Run book chapters through papermill. Chapters in book order: " + ", ".join(CHAPTERS),
    )
    parser.add_argument("name", nargs="?", help="chapter to run (see --list)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="set a parameter, read like papermill's -p (repeatable)")
    parser.add_argument("--all", action="store_true",
                        help="run every chapter in book order with its defaults (and any -p given)")
    parser.add_argument("--list", action="store_true", help="list the chapters and their parameters, then exit")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help="where executed notebooks go (default book/chapters)")
    parser.add_argument("--log-output", action="store_true", help="stream cell output while running")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for name in CHAPTERS:
            print(name)
            for param in chapter_parameters(name).values():
                print(f"    {param.describe()}")
        return 0
    if args.all == bool(args.name):
        print("mmlib chapter: give one chapter NAME or --all (see --list)", file=sys.stderr)
        return 2
    given = {key: parse_cli_value(value) for key, value in args.parameter}
    names = list(CHAPTERS) if args.all else [args.name]
    try:
        if args.all and given:
            known = set().union(*(chapter_parameters(n) for n in names))
            unknown = sorted(set(given) - known)
            if unknown:
                raise ChapterError(f"no chapter has parameter {', '.join(map(repr, unknown))} (see --list)")
        for name in names:
            if args.all:
                declared = chapter_parameters(name)
                params = {k: v for k, v in given.items() if k in declared}
            else:
                params = given
            start = time.perf_counter()
            print(f"chapter {name}: running notebooks/{name}.py {params or ''}".rstrip(), flush=True)
            try:
                output = run_chapter(name, params, output_dir=args.output_dir, log_output=args.log_output)
            except KeyboardInterrupt:
                print(describe_interrupt(name, Path(args.output_dir) / f"{name}.ipynb"), file=sys.stderr)
                return 130
            print(f"chapter {name}: wrote {output} in {time.perf_counter() - start:.0f} s", flush=True)
    except ChapterError as error:
        print(f"mmlib chapter: {error}", file=sys.stderr)
        return 2
    except ChapterFailed as error:
        print(f"mmlib {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

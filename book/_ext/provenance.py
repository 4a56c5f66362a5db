"""The ``{provenance}`` directive: a table of how each executed chapter in ``chapters/`` was made.

For every ``chapters/NAME.ipynb`` (in the book's chapter order): when papermill started it, how
long it ran, the parameters given on the command line (the rest are the defaults shown in the
chapter's first cell), the device, CPU numerics and commit recorded by
``mmlib.chapters.run_chapter``, and the results-store records the chapter read (glued as ``provenance_records`` by
``mmlib.book.save_summary``). Absolute paths among the parameters are shortened to their last
part, so the page never shows a folder of the machine that built the book.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from sphinx.util.docutils import SphinxDirective


def _short(value) -> str:
    text = str(value)
    return f"…/{Path(text).name}" if text.startswith("/") else text


def _records(notebook: dict, name: str = "provenance_records") -> list[str]:
    """The run ids a chapter glued as ``name``: its records, or its exercises' records
    (``provenance_exercise_records``, kept in ``results/runs/exercises``)."""
    for cell in notebook.get("cells", []):
        for out in cell.get("outputs", []):
            scrapbook = out.get("metadata", {}).get("scrapbook", {})
            if scrapbook.get("name") == name:
                prefix = scrapbook.get("mime_prefix", "")
                return list(ast.literal_eval(out["data"][prefix + "text/plain"]))
    return []


def numerics_label(numerics: dict) -> str:
    """``pinned`` or ``native (ATen AVX512, MKL OFF)``: the code path a chapter's CPU math took."""
    if not numerics:
        return "numerics not recorded"
    if numerics.get("pinned"):
        return "pinned"
    return f"not pinned (ATen {numerics.get('cpu_capability')}, MKL {numerics.get('mkl_branch')})"


def machine_line(numerics: dict) -> str:
    """One machine as the provenance page lists it: CPU, capability, BLAS and the libraries' paths."""
    openblas = "/".join(numerics.get("openblas") or []) or "not loaded"
    return (f"{numerics.get('cpu', '?')}: torch CPU capability {numerics.get('cpu_capability', '?')}, BLAS "
            f"{numerics.get('blas', '?')} (MKL branch {numerics.get('mkl_branch')}), OpenBLAS kernels {openblas}, "
            f"{numerics_label(numerics)}")


def chapter_rows(chapters_dir: Path, order: list[str]) -> list[dict]:
    """One dict per executed chapter: name, start, seconds, parameters, device, numerics, commit,
    records, and ``env`` (what :func:`mmlib.results.environment_info` recorded)."""
    names = [n for n in order if (chapters_dir / f"{n}.ipynb").is_file()]
    rows = []
    for name in names:
        notebook = json.loads((chapters_dir / f"{name}.ipynb").read_text())
        run = notebook.get("metadata", {}).get("papermill", {})
        env = notebook.get("metadata", {}).get("mmlib", {})
        device = env.get("gpu") or env.get("device") or "?"
        if env.get("cpu_threads") and not env.get("gpu"):
            device = f"{device}, {env['cpu_threads']} threads, {numerics_label(env.get('numerics', {}))}"
        params = run.get("parameters") or {}
        rows.append({
            "name": name,
            "start": (run.get("start_time") or "?")[:19].replace("T", " "),
            "seconds": run.get("duration"),
            "parameters": ", ".join(f"`{k}={_short(v)}`" for k, v in params.items()) or "defaults",
            "device": device,
            "numerics": env.get("numerics", {}),
            "commit": (env.get("git_commit") or "?")[:10],
            "records": _records(notebook),
            "exercise_records": _records(notebook, "provenance_exercise_records"),
            "env": env,
        })
    return rows


def software_line(env: dict) -> str:
    """The versions a chapter ran with, as recorded by :func:`mmlib.results.environment_info`."""
    return ", ".join(f"{name} {env[key]}" for name, key in (("Python", "python"), ("torch", "torch"),
                                                          ("numpy", "numpy")) if env.get(key))


BUILD_LIBRARIES = ("jupyter-book", "sphinx", "myst-nb", "sphinx-book-theme", "pandas", "scipy",
                   "matplotlib", "seaborn", "papermill", "jupytext")


def build_line() -> str:
    """The versions of the libraries that render the book and make its tables and figures."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in BUILD_LIBRARIES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def provenance_markdown(rows: list[dict], sources: Path, here: Path) -> str:
    """The table (chapter, its ``.py`` source, when, how long, where, which commit, how many
    records), then the parameters each chapter was given, the software and CPU math of the runs and
    the record lists. Parameters sit under the table so that it fits the page at 1280 px."""
    lines = ["| chapter | executed (UTC) | took | device | commit | records |",
             "|---|---|--:|---|---|--:|"]
    for row in rows:
        took = "?" if row["seconds"] is None else f"{row['seconds'] / 60:.1f} min"
        source = sources / f"{row['name']}.py"
        link = (f" ({{download}}`{source.name} <{os.path.relpath(source, here)}>`)"
                if source.is_file() else "")
        chapter = f"{{doc}}`{row['name']} <chapters/{row['name']}>`{link}"
        lines.append(f"| {chapter} | {row['start']} | {took} | {row['device']} | `{row['commit']}` "
                     f"| {len(row['records'])} |")
    lines += ["", "Parameters given on the command line (the others kept the chapter's defaults):", ""]
    lines += [f"- {row['name']}: {row['parameters']}" for row in rows]
    software = list(dict.fromkeys(software_line(row["env"]) for row in rows if software_line(row["env"])))
    lines += ["", "Software of these runs: " + ("; ".join(software) or "not recorded") + ". The book was "
              f"rendered with {build_line()}."]
    machines = list(dict.fromkeys(machine_line(row["numerics"]) for row in rows if row["numerics"]))
    if machines:
        lines += ["", "CPU math of these runs (`mmlib.numerics`; pinned runs give the same bits on every "
                  "x86-64 CPU with AVX2):", ""] + [f"- {machine}" for machine in machines]
    for row in rows:
        if row["records"]:
            lines += ["", f":::{{dropdown}} Records read by {row['name']} ({len(row['records'])})",
                      ", ".join(f"`{r}`" for r in row["records"]), ":::"]
        if row.get("exercise_records"):
            lines += ["", (f":::{{dropdown}} Records of {row['name']}'s exercise "
                           f"({len(row['exercise_records'])}, in `results/runs/exercises`)"),
                      ", ".join(f"`{r}`" for r in row["exercise_records"]), ":::"]
    return "\n".join(lines)


class ProvenanceDirective(SphinxDirective):
    has_content = False

    def run(self):
        from mmlib.chapters import CHAPTERS, NOTEBOOK_DIR

        rows = chapter_rows(Path(self.env.srcdir) / "chapters", list(CHAPTERS))
        if not rows:
            return self.parse_text_to_nodes("No executed chapter was found in `chapters/`.")
        here = Path(self.env.doc2path(self.env.docname)).parent
        return self.parse_text_to_nodes(provenance_markdown(rows, NOTEBOOK_DIR, here))


def _always_reread(app, env, added, changed, removed):
    """The page depends on every notebook's metadata: rebuild it on every build."""
    return [doc for doc in env.found_docs if doc == "provenance"]


def setup(app):
    app.add_directive("provenance", ProvenanceDirective)
    app.connect("env-get-outdated", _always_reread)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

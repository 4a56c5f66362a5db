"""A ``.py`` entry in each chapter page's download menu: the chapter's jupytext source.

The theme's download menu offers a page's ``.ipynb`` (the executed chapter); a reader who wants
to rerun or edit the chapter wants ``notebooks/NAME.py``, the source that ``make book`` executes.
For every page ``chapters/NAME`` whose source is in ``mmlib.chapters.NOTEBOOK_DIR``, this copies
that file into the built HTML beside the page's other sources (``_sources/chapters/NAME.py``)
and adds a link to it after the ``.ipynb`` entry.
"""

from __future__ import annotations

import shutil
from pathlib import Path

BUTTON_LABEL = "download-python-button"


def chapter_source(pagename: str) -> Path | None:
    """``notebooks/NAME.py`` for the page ``chapters/NAME``; None for other pages."""
    from mmlib.chapters import NOTEBOOK_DIR

    folder, _, name = pagename.rpartition("/")
    source = Path(NOTEBOOK_DIR) / f"{name}.py"
    return source if folder == "chapters" and source.is_file() else None


def add_source_download(app, pagename, templatename, context, doctree):
    """Copy the chapter's source into ``_sources/`` and list it in the page's download menu."""
    source = chapter_source(pagename)
    if source is None or app.builder.format != "html":
        return
    target = Path(app.builder.outdir) / "_sources" / "chapters" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].insert(1, {
                "type": "link",
                "url": f"{context['pathto']('_sources', 1)}/chapters/{source.name}",
                "text": ".py",
                "tooltip": "Download the chapter's source (jupytext, what make book runs)",
                "icon": "fab fa-python",
                "label": BUTTON_LABEL,
            })


def setup(app):
    # after sphinx-book-theme builds the download menu (its handlers run at priority 501)
    app.connect("html-page-context", add_source_download, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

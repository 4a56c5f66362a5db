"""Bibliography labels that read like the text's citations: ``Yang et al., 2024a``.

Registers the pybtex formatting style ``author_year_label``: the entries sorted by author, year
and title (as pybtex's ``alpha``), each labelled ``Name, Year``, ``Name and Other, Year`` or
``Name et al., Year``, with ``a``, ``b`` … where two works share a label (LFM and CRMT are both by
a Yang in 2024). ``bibtex_reference_style: label`` in ``_config.yml`` cites with the same label,
so the text and the bibliography agree.
"""

from __future__ import annotations

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.style.formatting.alpha import Style as AlphaStyle
from pybtex.style.labels import BaseLabelStyle


def author_year(entry) -> str:
    """``Name, Year``, ``Name and Other, Year`` or ``Name et al., Year`` of one entry."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(p.last_names) or str(p) for p in persons]
    year = entry.fields.get("year", "n.d.")
    if not names:
        return f"{entry.fields.get('title', entry.key).split(':')[0]}, {year}"
    if len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {year}".replace("{", "").replace("}", "")


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        labels = [author_year(entry) for entry in sorted_entries]
        count, counted = Counter(labels), Counter()
        for label in labels:
            if count[label] == 1:
                yield label
            else:
                yield label + chr(ord("a") + counted[label])
                counted.update([label])


class AuthorYearStyle(AlphaStyle):
    default_label_style = AuthorYearLabels


register_plugin("pybtex.style.formatting", "author_year_label", AuthorYearStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}

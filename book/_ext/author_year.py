"""A bibliography labelled the way the text cites: "Norhikmah et al., 2022", not "[NLR22]".

sphinxcontrib-bibtex cites author-year in the text (``bibtex_reference_style``) but labels
the bibliography with pybtex's alpha labels unless the formatting style says otherwise.
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as Plain
from pybtex.style.labels import BaseLabelStyle


class AuthorYearLabels(BaseLabelStyle):
    """One author's last name, two joined by "and", more as "et al.", then the year."""

    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            names = [" ".join(p.last_names) for p in entry.persons.get("author", entry.persons.get("editor", []))]
            who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
            yield f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(Plain):
    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

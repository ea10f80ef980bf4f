"""HTML templates to PDF bytes with WeasyPrint, reproducibly: the same view model gives the same
bytes, so a document's sha256 identifies it.

WeasyPrint writes no creation date unless the HTML asks for one (``dcterms.created``: the
templates name the document's own date instead of the time of rendering), and its file
identifier is derived here from the HTML, not left to chance. Fonts come from the OS through
Pango/fontconfig: DejaVu Sans covers Latin, Greek and Cyrillic (the Dockerfile installs it).
"""

import hashlib
from functools import cache
from types import ModuleType
from typing import Any, Protocol

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from domain.money import format_minor
from services.errors import Problem

STYLESHEET = "documents.css"


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("templates", "documents"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = format_minor
    return environment


@cache
def _weasyprint() -> ModuleType:
    """WeasyPrint, loaded on first use: without Pango in the OS the rest of the API still runs,
    and a PDF request gets a 503 that says what is missing."""
    try:
        import weasyprint
    except OSError as missing:
        raise Problem(
            503,
            "pdf-unavailable",
            "PDFs unavailable",
            "This server cannot draw PDFs: WeasyPrint needs Pango from the OS "
            f"(see the README's Documents section): {missing}",
        ) from missing
    return weasyprint


@cache
def _stylesheet() -> Any:
    loader = _environment().loader
    assert loader is not None
    source, _, _ = loader.get_source(_environment(), STYLESHEET)
    return _weasyprint().CSS(string=source)


class Document(Protocol):
    """A view model: the template it fills (as ``doc``) and the name its file goes by."""

    template: str

    @property
    def filename(self) -> str: ...


def render_pdf(document: Document) -> bytes:
    html = _environment().get_template(document.template).render(doc=document)
    identifier = hashlib.sha256(html.encode()).hexdigest()[:32].encode()
    return (
        _weasyprint()
        .HTML(string=html)
        .write_pdf(stylesheets=[_stylesheet()], pdf_identifier=identifier)
    )

"""Recording a document as issued: the workflow that issues an invoice or a credit note then
calls ``record_document``, which renders its PDF once, keeps it and audits its sha256; a later
call finds it recorded.

Rendering takes CPU, not the database: seconds for a thousand lines, minutes for ten thousand,
so its attempts get minutes where database activities get seconds.
"""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows.activity_calls import activity_caller

_render = activity_caller("DocumentNotIssued", attempt_timeout=timedelta(minutes=10))
# Workflows started before it leave their documents unrecorded: their commands stay as they were.
DOCUMENT_HASH_PATCH = "record-issued-document-hash"


@dataclass
class RecordDocument:
    kind: str  # invoice | credit_note
    document_id: str
    actor: str
    at: str


@dataclass
class RecordedDocument:
    document_id: str
    number: str
    sha256: str
    size: int


async def record_document(kind: str, document_id: str, actor: str) -> RecordedDocument | None:
    """Record a document just issued (None in a workflow started before DOCUMENT_HASH_PATCH)."""
    if not workflow.patched(DOCUMENT_HASH_PATCH):
        return None
    request = RecordDocument(kind, document_id, actor, iso(workflow.now()))
    label = f"{kind.replace('_', ' ')} {document_id}"
    recorded: RecordedDocument = await _render(
        "record_document", request, RecordedDocument, f"record the PDF of {label}"
    )
    return recorded

"""Agents' corrections of a ticket's category, kept for retraining the classifier.

A correction holds a reference to the text (a ticket message's id), never the text: the words
are the customer's personal data, sealed with the ticket. `export` writes JSON Lines that
`python -m bench.classifier --extra` reads once a reviewer has added each row's `text`
(anonymised, read through the ticket with support rights): see docs/tickets.md.
"""

from __future__ import annotations

import json
from datetime import datetime

from crm.auth import Caller, Permission
from crm.clock import Clock, IdFactory
from crm.errors import FieldProblem, InvalidInput
from crm.tickets.aftersales_store import AfterSalesStore
from crm.tickets.classifier import CATEGORIES


class Corrections:
    def __init__(self, store: AfterSalesStore, clock: Clock, ids: IdFactory) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids

    def record_correction(
        self, caller: Caller, text_ref: str, predicted: str, corrected: str
    ) -> str:
        caller.require(Permission.WORK_TICKETS)
        for name, value in (("predicted", predicted), ("corrected", corrected)):
            if value not in CATEGORIES:
                raise InvalidInput(
                    f"{name} is not a ticket category",
                    [FieldProblem(name, f"one of {', '.join(CATEGORIES)}")],
                )
        correction_id = self.ids()
        self.store.record_correction(
            correction_id, text_ref, predicted, corrected, caller.subject, self.clock()
        )
        return correction_id

    def export(self, month: str) -> str:
        """One month's corrections as JSON Lines: text_ref, label (the corrected category),
        predicted, at. Oldest first."""
        rows = self.store.corrections(month)
        lines = [
            json.dumps(
                {
                    "text_ref": r["text_ref"],
                    "label": r["corrected"],
                    "predicted": r["predicted"],
                    "at": datetime.fromisoformat(r["at"]).isoformat(),
                },
                ensure_ascii=False,
            )
            for r in sorted(rows, key=lambda r: str(r["SK"]))
        ]
        return "".join(line + "\n" for line in lines)

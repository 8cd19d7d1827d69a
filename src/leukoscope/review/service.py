"""The stores and caches behind the review app (results, reviews, accounts, pictures), one lock
around every store call."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leukoscope.classifier.model_info import read_model_info
from leukoscope.config import Settings
from leukoscope.errors import ParameterError
from leukoscope.ids import check_sample_id
from leukoscope.pictures.native import NativeCrops
from leukoscope.pictures.views import display_colours
from leukoscope.results.prepared_pictures import PreparedPictures
from leukoscope.results.review_records import ReviewConflict
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore, SampleRecord
from leukoscope.review.accounts import Accounts
from leukoscope.review.comments import comments
from leukoscope.review.state import SampleFacts, page_state, sample_facts
from leukoscope.types import (
    CELL_CLASSES,
    MODALITIES,
    CellClass,
    Modality,
    SampleStatus,
    parse_modalities,
)

RUN_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ReviewService:
    """The stores and caches behind the app; every store call under one lock."""

    def __init__(self, database: Path, settings: Settings) -> None:
        if not database.is_file():
            raise ParameterError(f"results database {database} not found (pass --db)")
        self.database = database
        self.results = ResultStore(database)
        self.reviews = ReviewStore(database)
        self.accounts = Accounts(database)
        self.require_verification = settings.review.require_verification
        self.colours = display_colours(settings)
        self.crop_um = settings.pipeline.segmentation.crop_um
        self.native = NativeCrops(self.crop_um)
        self.prepared = PreparedPictures(database, settings.pipeline.segmentation.crop_um)
        self.lock = threading.Lock()
        self._facts: dict[tuple[str, str], SampleFacts] = {}
        self._modalities: dict[str, tuple[Modality, ...]] = {}
        self._classes: dict[str, tuple[str, ...]] = {}

    def close(self) -> None:
        """Stop preparing pictures, close the connections."""
        self.prepared.close()
        self.accounts.close()
        self.reviews.close()
        self.results.close()

    def check_sample(self, run_id: str, sample_id: str) -> SampleRecord:
        """The sample's row; ParameterError for a malformed id, LookupError for an unknown one."""
        if not RUN_ID_RE.fullmatch(run_id):
            raise ParameterError(f"run id {run_id!r} is not allowed")
        check_sample_id(sample_id)
        for row in self.results.samples(run_id):
            if row["sample_id"] == sample_id:
                return row
        raise LookupError(f"no sample {sample_id!r} in run {run_id}")

    def facts(self, run_id: str, sample_id: str) -> SampleFacts:
        """The finished sample's summary and results (cached: they no longer change)."""
        key = (run_id, sample_id)
        if key not in self._facts:
            self._facts[key] = sample_facts(self.results, run_id, sample_id)
        return self._facts[key]

    def finished(self, run_id: str, sample_id: str) -> SampleFacts:
        """The facts of a finished sample; ReviewConflict while it is still running."""
        row = self.check_sample(run_id, sample_id)
        if row["status"] == SampleStatus.RUNNING.value:
            raise ReviewConflict(
                f"sample {sample_id!r} is still running: review it once its differential is final"
            )
        return self.facts(run_id, sample_id)

    def view(self, run_id: str, sample_id: str) -> dict[str, Any]:
        """The page state, changing nothing (a sample never opened shows its original cells)."""
        return self._shown(self.finished(run_id, sample_id), run_id, sample_id)

    def _shown(self, facts: SampleFacts, run_id: str, sample_id: str) -> dict[str, Any]:
        """The page state with the comments and the crop's side in um (for the scale bar)."""
        state = page_state(self.reviews, facts, run_id, sample_id)
        state["comments"] = comments(self.reviews, run_id, sample_id)
        state["crop_um"] = self.crop_um
        state["classes"] = list(self.classes(run_id))
        return state

    def open(self, run_id: str, sample_id: str) -> dict[str, Any]:
        """Open the sample for review (once, before its first change) and return the page
        state."""
        facts = self.finished(run_id, sample_id)
        known = (facts.summary, list(facts.results.values()))
        self.reviews.open_review(self.results, run_id, sample_id, known=known)
        return self._shown(facts, run_id, sample_id)

    def change(
        self, run_id: str, sample_id: str, edit: Callable[[ReviewStore], object]
    ) -> dict[str, Any]:
        """Under the lock: open the sample for review, make `edit` on its review records, and
        return the page state after it."""
        with self.lock:
            self.open(run_id, sample_id)
            edit(self.reviews)
            return self.open(run_id, sample_id)

    def classes(self, run_id: str) -> tuple[str, ...]:
        """The classes of the run's model (its review keys and galleries); the five if unknown."""
        if run_id not in self._classes:
            run = next((r for r in self.results.runs() if r["run_id"] == run_id), None)
            info = read_model_info(run["model_path"], run["model_version"]) if run else None
            named = info.classes if info else ()
            self._classes[run_id] = tuple(c.value for c in CellClass if c.value in named) or tuple(
                c.value for c in CELL_CLASSES
            )
        return self._classes[run_id]

    def modalities(self, run_id: str) -> tuple[Modality, ...]:
        """The modalities the run's model saw (the thumbnail's tiles); all four if unknown."""
        if run_id not in self._modalities:
            run = next((r for r in self.results.runs() if r["run_id"] == run_id), None)
            info = read_model_info(run["model_path"], run["model_version"]) if run else None
            try:
                found = parse_modalities(list(info.modalities)) if info else MODALITIES
            except ParameterError:
                found = MODALITIES
            self._modalities[run_id] = found
        return self._modalities[run_id]

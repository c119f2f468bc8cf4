"""explain and check on a data folder: the batch pass's index, no graph, few Python facts."""

from __future__ import annotations

import pytest

from spillover import open_folder
from spillover.backends.arrays import ArrayBackend
from spillover.backends.memory import MemoryBackend
from spillover.connect import read_dataset
from spillover.engines.search import check, explain_entry
from spillover.render.json import explanation_json
from spillover.synth.generate import generate


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("population")
    generate(3000, 5, folder)
    return folder


def test_open_folder_indexes_columns_and_builds_facts_only_for_what_it_touches(population):
    backend = open_folder(population)
    assert isinstance(backend, ArrayBackend)
    loans = len(backend.index.loans)
    for batch in backend.iter_entries(50):
        for entry in batch[:5]:
            explain_entry(backend, entry.entry_id)
        break
    assert 0 < len(backend._loans) < loans / 10


def test_open_folder_explains_like_the_dataset_backend(population):
    arrays, memory = open_folder(population), MemoryBackend(read_dataset(population))
    entries = [e for batch in memory.iter_entries() for e in batch][::25]
    for entry in entries:
        assert explanation_json(explain_entry(arrays, entry.entry_id)) == explanation_json(
            explain_entry(memory, entry.entry_id)
        )
        assert explanation_json(
            check(arrays, entry.platform_id, entry.subject_kind, entry.subject, entry.listed_at)
        ) == explanation_json(
            check(memory, entry.platform_id, entry.subject_kind, entry.subject, entry.listed_at)
        )

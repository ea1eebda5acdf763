"""The export and import tests of tests/test_transfer.py through a central server (the remote
binding: `GET …/export` streamed, bulk writes) and through a location (exports read the centre,
uncached): the `store` fixture of tests/edge/conftest.py gives `remote` and `location`.
The consistency test under writes is not repeated here: the session centre keeps a short change
history, which the test replays from the start; tests/api/test_routes_export.py runs it over
REST on every engine instead."""

from __future__ import annotations

from tests.test_transfer import (  # noqa: F401  (collected again here, over the remote engines)
    test_a_bad_item_stops_the_import_after_writing_what_came_before,
    test_a_refused_file_writes_nothing,
    test_export_is_every_live_entry_in_byte_order,
    test_export_of_an_unknown_namespace,
    test_export_to_and_import_from_a_file,
    test_import_into_an_empty_namespace_is_byte_identical,
    test_import_merges_and_is_idempotent,
    test_import_skips_what_expired_and_keeps_short_expirations,
    test_the_snapshot_does_not_see_later_writes,
    test_wrangler_bulk_json_imports_directly,
)

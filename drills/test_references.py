"""References between documents resolve where the app relies on them ([[references]] of expectations.toml).

A required reference that points nowhere fails with the count and a few examples; an informational
one (OpenFoodFacts' own taxonomy has dangling parents) is counted in the message and evidence only.
"""

import pytest

from grimoire_drill.references import count_dangling, count_dangling_in_process


@pytest.mark.check("mongodb.references")
def test_references_resolve(drill, expectations, reference, evidence):
    name = expectations.mongo_database
    db = drill.mongo_database(name)
    present = set(db.list_collection_names())
    if reference.source_collection not in present:
        pytest.skip(f"{name}.{reference.source_collection} was not restored (reported by mongodb.collection)")
    in_process = drill.in_process_documents(name)  # the simulated store: no copying find per document
    counted = (count_dangling(db, reference, expectations.limits) if in_process is None
               else count_dangling_in_process(in_process, reference, expectations.limits))
    examples = [f"{doc} → {value}" for doc, value in counted.examples]
    evidence.data.update(source=f"{name}.{reference.check_id}", target=f"{name}.{reference.target}",
                         required=reference.required, documents=counted.documents, references=counted.references,
                         dangling=counted.dangling, not_strings=counted.not_strings, examples=examples,
                         queries=counted.queries,
                         examples_limit=expectations.limits.name("max_reference_examples"))
    shown = "; ".join(examples)
    more = counted.dangling - len(examples)
    listed = f" (e.g. {shown}{f' and {more} more' if more else ''})" if examples else ""
    what = (f"{name}.{reference.check_id}: {counted.dangling:,} of {counted.references:,} reference(s) "
            f"point to no {name}.{reference.target}")
    if reference.required:
        assert not counted.dangling, f"{what}{listed} — the app cannot follow them"
        evidence.message = (f"{name}.{reference.check_id}: all {counted.references:,} reference(s) in "
                            f"{counted.documents:,} document(s) resolve to {name}.{reference.target}")
        return
    evidence.message = f"{what}{listed} (informational: not required by expectations.toml)"

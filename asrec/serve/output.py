"""The output formats of ``asrec recommend``.

- JSONL: one line per user, ``{"user": token, "items": [tokens, best first], "scores": [floats]}``;
- CSV: a header ``user,rank,item,score``, then one row per recommended item, rank 1 the best.
"""

import csv
import json

FORMATS = ("jsonl", "csv")


def write_records(records, stream, output_format: str) -> int:
    """Write the records of ``asrec.serve.recommend_users`` to a text stream; returns how many users."""
    if output_format not in FORMATS:
        raise ValueError(f"output_format: expected one of {', '.join(FORMATS)}, got {output_format!r}")
    count = 0
    if output_format == "jsonl":
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["user", "rank", "item", "score"])
    for record in records:
        writer.writerows([record["user"], rank, item, repr(score)]
                         for rank, (item, score) in enumerate(zip(record["items"], record["scores"]), 1))
        count += 1
    return count

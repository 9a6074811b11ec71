"""The limit of the batch scenario of ``bench/serving.py``: read a Parquet file in record
batches with pyarrow and call ``predict_proba`` of the fitted model (the joblib file every
tool is given) on each batch as a DataFrame, discarding the results. Runs in the
project's virtualenv. The reader does not pre-buffer: pyarrow's default pre-buffering
keeps every row group it has read until the file is closed (peak RSS near 4 GiB on the
10M-row file) and is slower on a local disk.

Usage: ``python _serving_batch_limit.py '{"model": "m.joblib", "input": "in.parquet",
"chunk_rows": 1000000}'``; prints ``{"result": {"rows": ..., "seconds": ...}}`` (seconds of
the read-and-predict loop alone).
"""

from __future__ import annotations

import json
import sys
import time

import joblib
import pyarrow.parquet as pq


def main() -> None:
    """Score the file named in the JSON argument."""
    args = json.loads(sys.argv[1])
    model = joblib.load(args["model"])
    rows = 0
    start = time.perf_counter()
    for batch in pq.ParquetFile(args["input"], pre_buffer=False).iter_batches(batch_size=args["chunk_rows"]):
        model.predict_proba(batch.to_pandas())
        rows += batch.num_rows
    print(json.dumps({"result": {"rows": rows, "seconds": time.perf_counter() - start}}), flush=True)


if __name__ == "__main__":
    main()

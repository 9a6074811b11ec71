"""A child process for durability and concurrency tests.

Usage: metric_logger.py RUNS KEYS STEPS [--hang]
Logs RUNS runs x KEYS metrics x STEPS steps, one log_metric call per point, printing
``ACK <points>`` after every step (everything up to there has been acknowledged).
With --hang it stops before ending the last run and sleeps, waiting to be killed.
"""

from __future__ import annotations

import sys
import time

import conveyor


def main() -> None:
    runs, keys, steps = (int(value) for value in sys.argv[1:4])
    hang = "--hang" in sys.argv
    acknowledged = 0
    for index in range(runs):
        run = conveyor.start_run(experiment="durability", name=f"run-{index}")
        print(f"RUN {run.id}", flush=True)
        for step in range(steps):
            for key in range(keys):
                run.log_metric(f"m{key}", step * 0.5 + key, step=step)
                acknowledged += 1
            print(f"ACK {acknowledged}", flush=True)
        if hang and index == runs - 1:
            print("HANGING", flush=True)
            time.sleep(3600)
        run.end()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()

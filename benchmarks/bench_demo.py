"""The demo as a benchmark: its held-out mAP and how long each part takes.

Runs ``ssd_keras.demo.run_demo`` (the synthetic shapes, SSD7 trained for 22 epochs, VOC mAP on
the test split) in a temporary folder, as ``make demo`` does, and reports ``metrics.json``.
Run with ``make bench`` or ``python benchmarks/bench_demo.py [--results DIR]``.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import results  # noqa: E402


def main(argv=None):
    """Runs the demo and prints (and saves) its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the demo's tiny configuration (seconds)")
    results.add_argument(parser)
    args = parser.parse_args(argv)
    from ssd_keras.demo import run_demo

    with tempfile.TemporaryDirectory() as folder:
        metrics = run_demo(os.path.join(folder, "demo"), smoke=args.smoke, verbose=False)
    rows = [["held-out mAP (VOC 11-point)", round(metrics["mAP"], 3)]]
    rows += [[f"AP {name}", round(ap, 3)] for name, ap in zip(metrics["classes"], metrics["AP"])]
    rows += [
        [f"{part} s", metrics[key]]
        for part, key in (
            ("data", "data_seconds"),
            ("training", "training_seconds"),
            ("evaluation", "evaluation_seconds"),
            ("whole run", "seconds"),
        )
    ]
    for name, value in rows:
        print(f"{name:32s} {value}")
    results.save(
        args,
        "bench_demo",
        f"The demo: SSD7 on the synthetic shapes, {metrics['epochs']} epochs, {metrics['backend']}",
        ["figure", "value"],
        rows,
        "800 training and 120 test images, batch 4, Adam; one run",
    )
    return metrics


if __name__ == "__main__":
    main()

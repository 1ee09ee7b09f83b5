"""The README's GPU table and the issue's goals, from the JSON files of `gpu_run.sh`.

    python benchmarks/gpu_table.py gpu_out > gpu_out/table.md

Reads ``torchvision.json``, ``jax.json``, ``torch.json`` and ``torch_compiled.json`` from
the folder (a missing file or figure, from a run cut short, is shown as "-") and prints a
Markdown table in the layout of the README's "On a GPU" table, then one line per goal:
met, or missed and by how much. `gpu_run.sh` writes it next to the JSON files.
"""

import json
import os
import sys

RUNS = ("torchvision", "jax", "torch", "torch_compiled")
# The goals on the H200 (issue "The GPU"): training >= 2000 images/s in bfloat16 on JAX
# (4x torchvision), >= 1000 frames/s end to end at batch 8 and confidence 0.01, <= 3 ms at
# batch 1, forward at batch 8 >= torchvision's, the PyTorch backend's training within 2x of
# torchvision's.
TRAIN_GOAL, END_TO_END_GOAL, LATENCY_GOAL = 2000.0, 1000.0, 3.0


def load(folder):
    """{run: figures} for the runs whose JSON file exists and can be read."""
    figures = {}
    for run in RUNS:
        path = os.path.join(folder, f"{run}.json")
        try:
            with open(path) as f:
                figures[run] = json.load(f)
        except (OSError, ValueError):
            continue
    return figures


def get(figures, run, *keys):
    """The number at `keys` in `run`'s figures, or None."""
    value = figures.get(run)
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def number(value, digits=0):
    """1234.5 -> '1,234' (or '1,234.5' with digits=1); None -> '-'."""
    return "-" if value is None else f"{value:,.{digits}f}"


def training_cell(figures, run, precision):
    """'train_on_batch rate / fit rate / rate with no host reads', with the loss when it
    was not finite."""
    case = (figures.get(run) or {}).get(f"train_{precision}")
    if not isinstance(case, dict):
        return "-"
    text = number(case.get("images_per_s"))
    if "fit_images_per_s" in case:
        text += f" / fit {number(case['fit_images_per_s'])}"
    if "device_images_per_s" in case:
        text += f" / device {number(case['device_images_per_s'])}"
    if not case.get("finite", True):
        text += " (loss not finite)"
    return text


def best(*values):
    """The largest of the values that exist, or None."""
    values = [v for v in values if v is not None]
    return max(values) if values else None


def verdict(what, value, goal, higher_is_better=True, unit=""):
    """One goal line: met, or missed and by how much."""
    if value is None or goal is None:
        return f"- {what}: not measured"
    met = value >= goal if higher_is_better else value <= goal
    shown = f"{number(value, 1 if value < 100 else 0)}{unit}"
    target = f"{number(goal, 1 if goal < 100 else 0)}{unit}"
    if met:
        return f"- {what}: met ({shown}; goal {'>=' if higher_is_better else '<='} {target})"
    factor = goal / value if higher_is_better else value / goal
    return f"- {what}: missed ({shown}; goal {'>=' if higher_is_better else '<='} {target}, {factor:.2f}x away)"


def table(figures):
    """The Markdown table and the goal lines, as one string."""
    tv = (figures.get("torchvision") or {}).get("torchvision") or {}  # the peer's figures (or why it did not run)

    def peer(key):
        return get(figures, "torchvision", "torchvision", key)

    device = next(
        (figures[run]["device"] for run in ("jax", "torch", "torchvision") if (figures.get(run) or {}).get("device")),
        None,
    )

    ours = next((figures[run] for run in ("jax", "torch", "torch_compiled") if "model" in (figures.get(run) or {})), {})
    model = (
        f"{ours.get('model', 'ssd300').upper()}, 21 classes, {'x'.join(map(str, ours.get('image_size', [300, 300])))}"
    )
    batch = ours.get("train_batch", 32)

    def both(run, key_bf16, key_fp32, field):
        return f"{number(get(figures, run, key_bf16, field))} / {number(get(figures, run, key_fp32, field))}"

    def torch_cell(cell):
        compiled = cell("torch_compiled")
        return cell("torch") + ("" if compiled in ("-", "- / -") else f" (compiled: {compiled})")

    bare_jit = get(figures, "jax", "end_to_end_batch1_conf0.01", "bare_jit_ms")
    pipeline = sorted(
        (int(key.split("_")[1]), value)
        for key, value in (figures.get("jax") or {}).items()
        if key.startswith("pipeline_") and isinstance(value, (int, float))
    )
    alone = [get(figures, "jax", f"independent_{workers}_processes") for workers, _ in pipeline]
    pipeline_cell = " / ".join(number(v) for _, v in pipeline) or "-"
    if any(v is not None for v in alone):
        pipeline_cell += f" (independent processes: {' / '.join(number(v) for v in alone)})"
    rows = [
        (
            f"training images/s, batch {batch}, bfloat16 (`train_on_batch` on device data / `fit` from host arrays / "
            "device: no host reads between steps)",
            number(peer("train_bfloat16")),
            training_cell(figures, "jax", "bfloat16"),
            torch_cell(lambda run: training_cell(figures, run, "bfloat16")),
        ),
        (
            f"training images/s, batch {batch}, float32",
            "-",
            training_cell(figures, "jax", "float32"),
            torch_cell(lambda run: training_cell(figures, run, "float32")),
        ),
        (
            "forward frames/s, batch 8 (bfloat16 / float32)",
            number(peer("forward_batch8_fps")),
            both("jax", "forward_batch8_bfloat16", "forward_batch8_float32", "frames_per_s"),
            torch_cell(lambda run: both(run, "forward_batch8_bfloat16", "forward_batch8_float32", "frames_per_s")),
        ),
        (
            "end to end frames/s, batch 8, confidence 0.01 (uint8 in, detections on the host)",
            number(peer("end_to_end_batch8_fps")),
            number(get(figures, "jax", "end_to_end_batch8_conf0.01", "frames_per_s")),
            torch_cell(lambda run: number(get(figures, run, "end_to_end_batch8_conf0.01", "frames_per_s"))),
        ),
        (
            "end to end frames/s, batch 8, confidence 0.5",
            "-",
            number(get(figures, "jax", "end_to_end_batch8_conf0.5", "frames_per_s")),
            number(get(figures, "torch", "end_to_end_batch8_conf0.5", "frames_per_s")),
        ),
        (
            "latency, batch 1, end to end, ms",
            number(peer("latency_batch1_ms"), 1),
            number(get(figures, "jax", "end_to_end_batch1_conf0.01", "ms"), 1)
            + ("" if bare_jit is None else f" (one jitted call: {number(bare_jit, 1)})"),
            number(get(figures, "torch", "end_to_end_batch1_conf0.01", "ms"), 1),
        ),
        (
            f"input pipeline images/s, SSD300 chain + encoder, {' / '.join(str(w) for w, _ in pipeline) or '-'} "
            "worker processes",
            "-",
            pipeline_cell,
            "-",
        ),
    ]
    lines = [
        f"Device: {device or 'unknown'}." + (f" torchvision did not run: {tv['skipped']}" if "skipped" in tv else ""),
        "",
        f"| case ({model}) | torchvision | JAX | PyTorch backend |",
        "|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    tv_train, tv_forward = peer("train_bfloat16"), peer("forward_batch8_fps")
    jax_train = get(figures, "jax", "train_bfloat16", "images_per_s")
    lines += ["", "Goals:", verdict(f"training, batch {batch}, bfloat16, JAX, images/s", jax_train, TRAIN_GOAL)]
    if jax_train is not None and not (figures["jax"]["train_bfloat16"].get("finite", True)):
        lines[-1] += " (but the loss was not finite)"
    for run, name in (("jax", "JAX"), ("torch", "PyTorch backend"), ("torch_compiled", "PyTorch backend compiled")):
        lines.append(
            verdict(
                f"end to end, batch 8, confidence 0.01, {name}, frames/s",
                get(figures, run, "end_to_end_batch8_conf0.01", "frames_per_s"),
                END_TO_END_GOAL,
            )
        )
    for run, name in (("jax", "JAX"), ("torch", "PyTorch backend")):
        lines.append(
            verdict(
                f"latency, batch 1, {name}",
                get(figures, run, "end_to_end_batch1_conf0.01", "ms"),
                LATENCY_GOAL,
                False,
                " ms",
            )
        )
    for run, name in (("jax", "JAX"), ("torch", "PyTorch backend")):
        rate = best(
            get(figures, run, "forward_batch8_bfloat16", "frames_per_s"),
            get(figures, run, "forward_batch8_float32", "frames_per_s"),
        )
        lines.append(
            verdict(f"forward, batch 8, {name} (faster precision) against torchvision's, frames/s", rate, tv_forward)
        )
    torch_train = best(
        get(figures, "torch", "train_bfloat16", "images_per_s"),
        get(figures, "torch_compiled", "train_bfloat16", "images_per_s"),
    )
    lines.append(
        verdict(
            f"training, batch {batch}, bfloat16, PyTorch backend (best of op by op and compiled) against half of "
            "torchvision's, images/s",
            torch_train,
            None if tv_train is None else tv_train / 2,
        )
    )
    fastest_pipeline = best(*(v for _, v in pipeline))
    lines.append(
        verdict(
            "input pipeline (its best worker count) against JAX's bfloat16 training rate, images/s",
            fastest_pipeline,
            jax_train,
        )
    )
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python benchmarks/gpu_table.py FOLDER (the JSON files of gpu_run.sh)")
    figures = load(argv[0])
    if not figures:
        raise SystemExit(f"{argv[0]}: none of {', '.join(r + '.json' for r in RUNS)} could be read")
    text = table(figures)
    sys.stdout.write(text)
    return text


if __name__ == "__main__":
    main()

"""fp32 channels_last against bf16 autocast, per batch size, on this CPU: the figures
behind speed.py's choice (which measures the same steps, once per setting).

    python bench/precision.py [--backbone efficientnet_lite0] [--size 224] [--batches 4 16 32]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inst" / "python"))

import torch  # noqa: E402

from tidyvision import speed  # noqa: E402
from tidyvision.classifier import build_classifier  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batches", type=int, nargs="+", default=[4, 16, 32])
    args = ap.parse_args()
    ok, capability = speed.bf16_kernels()
    print(f"{speed.machine()}; bf16 kernels: {ok} ({capability})")
    if not ok:
        print("torch runs no bf16 kernels here: fp32 everywhere, nothing to measure.")
        return
    model = build_classifier(args.backbone, 2, pretrained=True).to(memory_format=torch.channels_last)
    print(f"{args.backbone} at {args.size} px, fastest of {speed.STEPS} alternating steps after a warm-up")
    print("| kind | batch | fp32 channels_last | bf16 autocast | bf16 vs fp32 | chosen |")
    print("|---|---|---|---|---|---|")
    for kind in ("train", "infer"):
        for batch in (args.batches if kind == "train" else [8] + args.batches):
            r = speed._measure(kind, model, batch, args.size)
            chosen = "bf16" if r["ratio"] >= speed.MARGIN else "fp32"
            print(f"| {kind} | {batch} | {r['fp32_ms']:.0f} ms | {r['bf16_ms']:.0f} ms | {r['ratio']:.2f}x | {chosen} |")


if __name__ == "__main__":
    main()

"""Which precision is faster on this CPU: measured, not read from its flags.

Whether bf16 pays on a CPU depends on more than its ISA. On an AVX-512 BF16
EPYC without AMX, training a few images at a time ran 1.5x slower in bf16
than in fp32 channels_last; on an AMX Xeon bf16 training was slower at
every batch size up to 32 (0.75x at 4, 0.94x at 32) while bf16 inference
was 1.65x faster. So on a CPU where torch runs bf16 kernels at all, a few
steps of each precision are timed once per machine, backbone, image size,
batch size and kind of work ("train": forward, backward and an SGD step;
"infer": a forward pass), and the result is kept in the user's cache
(``<cache>/speed/precision-2.json``) for every later call. bf16 is chosen
only when it is at least ``MARGIN`` times faster, since fp32 is the more
exact. The measurement runs on a copy of the model with torch's random
state saved and restored, so it changes no result.
"""
import json
import os
import platform
import time

from .config import cache_dir

MARGIN = 1.1
STEPS = 4
_FILE = "precision-2.json"  # -2: fastest of alternating steps (earlier medians are not reused)


def bf16_kernels():
    """Does torch run native bf16 kernels on this CPU? Asks torch (its dispatch
    capability and oneDNN), which honours ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA
    and a VM's hidden ISA, unlike /proc/cpuinfo."""
    import torch
    capability = torch.backends.cpu.get_cpu_capability()
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn = False
    return capability.startswith("AVX512") and onednn, capability


def machine():
    """What a measurement holds for: the processor, what torch runs on it, and threads."""
    import torch
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}|{bf16_kernels()[1]}|torch {torch.__version__}|{torch.get_num_threads()} threads"


def _path():
    return os.path.join(cache_dir("speed"), _FILE)


def measured():
    """Every measurement kept for this machine: {key: record}."""
    try:
        with open(_path(), encoding="utf-8") as f:
            kept = json.load(f)
    except (OSError, ValueError):
        return {}
    here = machine()
    return {k: v for k, v in kept.items() if isinstance(v, dict) and v.get("machine") == here}


def _keep(key, record):
    """Add one record to the file, atomically (a lost race only means measuring again)."""
    path = _path()
    try:
        with open(path, encoding="utf-8") as f:
            kept = json.load(f)
    except (OSError, ValueError):
        kept = {}
    kept[key] = record
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(kept, f, indent=1)
    os.replace(tmp, path)


def choose(kind, model, name, batch_size, image_size, device, precision="auto"):
    """The precision for ``kind`` ("train" or "infer") of ``model`` (called ``name``).

    ``precision`` other than "auto" is the user's and is kept. Returns the
    precision and a record saying why.
    """
    from .config import resolve_precision
    if precision == "auto":
        precision = os.environ.get("TIDYVISION_PRECISION") or "auto"  # local_tidyvision() sets fp32
    if precision != "auto" or device != "cpu":
        return resolve_precision(precision, device), {"why": "asked for" if precision != "auto" else device}
    ok, capability = bf16_kernels()
    if not ok:
        return "fp32", {"why": f"torch runs no bf16 kernels on this CPU ({capability})"}
    key = f"{kind}|{name}|{int(image_size)}|{int(batch_size)}|{machine()}"
    record = measured().get(key)
    if record is None:
        record = _measure(kind, model, int(batch_size), int(image_size))
        record.update(kind=kind, backbone=name, image_size=int(image_size), batch_size=int(batch_size),
                      machine=machine(), measured=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        record["precision"] = "bf16" if record["ratio"] >= MARGIN else "fp32"
        _keep(key, record)
    return record["precision"], record


def _measure(kind, model, batch_size, image_size):
    """Median milliseconds of STEPS steps in each precision, after a warm-up step."""
    import copy

    import torch
    with torch.random.fork_rng(devices=[]):
        work = copy.deepcopy(model).to(memory_format=torch.channels_last)
        x = torch.randn(batch_size, 3, image_size, image_size,
                        generator=torch.Generator().manual_seed(0)).to(memory_format=torch.channels_last)
        step = _train_step(work, x) if kind == "train" else _infer_step(work, x)
        ms = _time(step)
    return {"fp32_ms": ms["fp32"], "bf16_ms": ms["bf16"], "ratio": ms["fp32"] / ms["bf16"]}


def _time(step):
    """The fastest of STEPS steps of each precision, after a warm-up of each.
    The two alternate, and the fastest step counts, so that other work on the
    machine (which only ever slows a step) weighs on both alike."""
    from .config import autocast
    times = {"fp32": [], "bf16": []}
    for i in range(STEPS + 1):
        for precision in ("fp32", "bf16") if i % 2 else ("bf16", "fp32"):
            t0 = time.perf_counter()
            with autocast("cpu", precision):
                step()
            if i:
                times[precision].append(1000 * (time.perf_counter() - t0))
    return {p: min(t) for p, t in times.items()}


def _train_step(model, x):
    import torch
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-6, momentum=0.9)
    y = torch.zeros(len(x), dtype=torch.long)

    def step():
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _infer_step(model, x):
    import torch
    model.eval()

    def step():
        with torch.inference_mode():
            model(x)
    return step


def inference(precision, device, model, name, image_size):
    """The precision of forward passes of ``model`` (batches of config.CPU_FORWARD_BATCH on a CPU)."""
    from .config import forward_batch
    return choose("infer", model, name, forward_batch(device, 64), image_size, device, precision)[0]

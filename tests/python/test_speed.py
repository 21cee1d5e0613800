"""The precision choice is asked of torch and measured, never read from /proc/cpuinfo."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tidyvision import config, speed
from tidyvision.errors import TidyvisionError

ENGINE = str(Path(__file__).resolve().parents[2] / "inst" / "python")
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def tiny_model():
    import torch
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TIDYVISION_CACHE_DIR", str(tmp_path))
    return tmp_path / "speed" / "precision-2.json"


def test_an_emulated_avx2_cpu_gets_no_bf16_whatever_its_flags_say(tmp_path):
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); from tidyvision import speed, config; "
              "import torch; m = torch.nn.Linear(4, 2); "
              "print(json.dumps([speed.bf16_kernels(), speed.choose('train', m, 'x', 4, 8, 'cpu'), "
              "config.describe()['bf16_kernels']]))")
    env = {**os.environ, **AVX2, "TIDYVISION_CACHE_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", script, ENGINE], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    (ok, capability), (precision, why), described = json.loads(res.stdout.strip().splitlines()[-1])
    assert capability == "AVX2" and ok is False and described is False
    assert precision == "fp32" and "no bf16 kernels" in why["why"]
    assert not (tmp_path / "speed").exists() or not any((tmp_path / "speed").iterdir())  # nothing to measure


def test_bf16_support_is_what_torch_reports():
    import torch
    ok, capability = speed.bf16_kernels()
    assert capability == torch.backends.cpu.get_cpu_capability()
    assert ok == (capability.startswith("AVX512") and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_a_measurement_is_made_once_kept_and_changes_no_random_state(cache):
    import torch
    if not speed.bf16_kernels()[0]:
        pytest.skip("this CPU runs no bf16 kernels: nothing is measured")
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    precision, record = speed.choose("train", model, "tiny", 4, 32, "cpu")
    assert torch.equal(torch.rand(3), expected), "the measurement drew from torch's random state"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "it trained the model itself"
    assert precision == ("bf16" if record["ratio"] >= speed.MARGIN else "fp32")
    assert record["fp32_ms"] > 0 and record["bf16_ms"] > 0
    kept = json.loads(cache.read_text())
    assert list(kept.values()) == [record]
    # Asked again, the kept answer comes back unmeasured; another batch size is measured anew.
    assert speed.choose("train", model, "tiny", 4, 32, "cpu") == (precision, record)
    speed.choose("infer", model, "tiny", 8, 32, "cpu")
    assert len(json.loads(cache.read_text())) == 2
    assert len(config.describe()["precision_measured"]["kind"]) == 2


def test_a_kept_measurement_decides_and_another_machines_does_not(cache):
    if not speed.bf16_kernels()[0]:
        pytest.skip("this CPU runs no bf16 kernels: nothing is measured")
    model = tiny_model()
    key = f"train|tiny|32|4|{speed.machine()}"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({key: {"precision": "bf16", "ratio": 1.5, "machine": speed.machine()},
                                 "other": {"precision": "bf16", "machine": "another CPU"}}))
    assert speed.choose("train", model, "tiny", 4, 32, "cpu")[0] == "bf16"
    assert list(speed.measured()) == [key]
    cache.write_text("{not json")  # a damaged file is measured again, not an error
    assert speed.choose("train", model, "tiny", 4, 32, "cpu")[0] in ("bf16", "fp32")


def test_a_precision_asked_for_is_kept_and_a_bad_one_refused(cache):
    model = tiny_model()
    assert speed.choose("train", model, "tiny", 4, 32, "cpu", "bf16")[0] == "bf16"
    assert speed.choose("infer", model, "tiny", 4, 32, "cpu", "fp32")[0] == "fp32"
    with pytest.raises(TidyvisionError, match="`precision` must be one of") as e:
        speed.choose("train", model, "tiny", 4, 32, "cpu", "int8")
    assert e.value.kind == "bad_argument"
    assert not cache.exists()

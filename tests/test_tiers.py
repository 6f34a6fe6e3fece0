"""What `auto` picks on a given machine, and preflight before loading a model.

The hardware is faked by building :class:`HardwareReport` by hand (there is no
GPU here); the cache is a real folder laid out like huggingface_hub's, and the
Hub probe talks to a server on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_hub import MUSICGEN_FILES, answer, fake_repo, local_http

from manga2music import tiers
from manga2music.cache import scan
from manga2music.errors import ModelUnavailableError
from manga2music.hardware import GpuInfo, HardwareReport, HubStatus, parse_nvidia_smi, torch_cuda_version
from manga2music.options import settings_named_as_flags
from manga2music.registry import MODELS, find_spec

ONLINE = HubStatus("https://huggingface.co", checked=True, reachable=True, detail="HTTP 200")


def machine(*, accelerator="cpu", vram=None, ram=24.0, ram_free=None, cached: Path | None = None,
            hub=ONLINE, offline=False, disk=500.0, key=False, torch=True) -> HardwareReport:
    """A machine as the probes would report it: a GPU of ``vram`` GB total (free = 95 %)."""
    gpus = [GpuInfo(0, f"Fake {vram:g} GB card", vram, round(vram * 0.95, 2), "8.6")] if vram else []
    return HardwareReport(
        packages={"torch": "2.5.0" if torch else None, "transformers": "5.2.0" if torch else None},
        torch_cuda="12.4" if vram else None, accelerator=accelerator, gpus=gpus,
        ram_total_gb=ram, ram_available_gb=ram * 0.8 if ram_free is None else ram_free,
        cache_dir=str(cached or ""), cached=scan(cached) if cached else [], disk_free_gb=disk,
        hub=hub, offline=offline, openai_key_set=key)


def cache_with(tmp_path: Path, *repo_ids: str) -> Path:
    for repo_id in repo_ids:
        fake_repo(tmp_path, repo_id, MUSICGEN_FILES)
    return tmp_path


def picks(probe: HardwareReport) -> tuple[str, str]:
    return tiers.resolve_auto("vision", probe=probe)[0].name, tiers.resolve_auto("music", probe=probe)[0].name


# --- the documented tier table -----------------------------------------------------------------


@pytest.mark.parametrize("probe, expected", [
    (machine(accelerator="cuda", vram=24.0), ("llava-7b", "musicgen-large")),
    (machine(accelerator="cuda", vram=16.0), ("qwen2.5-vl-3b", "musicgen-medium")),
    (machine(accelerator="cuda", vram=8.0), ("llava-0.5b", "musicgen-small")),
    (machine(accelerator="mps", ram=64.0), ("llava-0.5b", "musicgen-small")),
    (machine(accelerator="cpu", ram=24.0), ("llava-0.5b", "musicgen-small")),
    (machine(accelerator="cpu", ram=4.0, ram_free=2.0), ("builtin", "builtin")),
    (machine(accelerator="cpu", offline=True), ("builtin", "builtin")),
    (machine(accelerator="cuda", vram=24.0, hub=HubStatus("x", True, False, "timed out")), ("builtin", "builtin")),
    (machine(accelerator="cpu", torch=False), ("builtin", "builtin")),
], ids=["cuda-24GB", "cuda-16GB", "cuda-8GB", "mps", "cpu", "cpu-low-ram", "offline-no-cache", "hub-down",
        "no-torch"])
def test_auto_tier_table(probe, expected):
    assert picks(probe) == expected


def test_without_torch_auto_names_the_model_that_would_run_and_only_what_is_missing():
    """"neural models need torch and transformers (pip install torch transformers)" with transformers installed,
    no model named (the README says a line names the model that would run), and `pip install torch` on a laptop
    without an NVIDIA GPU fetches the ~4 GB CUDA build."""
    probe = machine(accelerator="cpu", torch=False)
    probe.packages["transformers"] = "5.2.0"
    picked, reason = tiers.resolve_auto("music", probe=probe)
    assert picked.name == "builtin"
    assert reason.startswith("musicgen-small would run on the CPU with torch, which is not installed"), reason
    assert "transformers" not in reason and "--index-url https://download.pytorch.org/whl/cpu" in reason, reason
    neither = tiers.resolve_auto("vision", probe=machine(accelerator="cpu", torch=False))[1]
    assert neither.startswith("llava-0.5b would run on the CPU with torch and transformers, which are not installed")
    with pytest.raises(ModelUnavailableError) as err:
        tiers.preflight(spec("musicgen-small"), device="cpu", probe=machine(torch=False))
    assert "--index-url https://download.pytorch.org/whl/cpu" in err.value.hint


def test_no_weights_reason_says_what_to_pull():
    spec, reason = tiers.resolve_auto("music", probe=machine(accelerator="cuda", vram=24.0, offline=True))
    assert spec.name == "builtin"
    assert "musicgen-large" in reason and "manga2music models pull musicgen-large" in reason
    spec, reason = tiers.resolve_auto("vision", probe=machine(offline=True))
    assert spec.name == "builtin" and "manga2music models pull llava-0.5b` while online" in reason  # pull refuses
    # to run offline (HF_HUB_OFFLINE=1), so the hint says when it works
    online_reason = tiers.resolve_auto("vision", probe=machine(hub=HubStatus("x", True, False, "timed out")))[1]
    assert "manga2music models pull llava-0.5b`" in online_reason and "while online" not in online_reason


def test_a_fallbacks_licence_is_named_as_the_picks_not_the_skipped_models():
    # the reason first explains why llava-0.5b was skipped; its licence clause must not read as llava's
    spec, reason = tiers.resolve_auto("vision", probe=machine(offline=True))
    assert spec.name == "builtin" and "llava-0.5b" in reason
    assert "builtin's licence mit: commercial use allowed" in reason


def test_cached_weights_are_used_offline(tmp_path):
    probe = machine(accelerator="cuda", vram=24.0, offline=True,
                    cached=cache_with(tmp_path, "facebook/musicgen-small", "llava-hf/llava-interleave-qwen-0.5b-hf"))
    assert picks(probe) == ("llava-0.5b", "musicgen-small")
    _, reason = tiers.resolve_auto("music", probe=probe)
    assert "weights cached" in reason and "models pull musicgen-large" in reason


def test_offline_argument_overrides_the_probe(tmp_path):
    probe = machine(accelerator="cpu")
    assert tiers.resolve_auto("music", probe=probe, offline=True)[0].name == "builtin"
    assert tiers.resolve_auto("music", probe=probe, offline=False)[0].name == "musicgen-small"


def test_download_must_fit_the_disk():
    probe = machine(accelerator="cuda", vram=24.0, disk=5.0)
    assert picks(probe) == ("llava-0.5b", "musicgen-small")  # 16 and 13 GB downloads do not fit in 5 GB
    assert picks(machine(accelerator="cpu", disk=1.0)) == ("builtin", "builtin")


def test_openai_key_never_makes_auto_pick_gpt():
    spec, reason = tiers.resolve_auto("vision", probe=machine(accelerator="cpu", offline=True, key=True))
    assert spec.backend != "openai"
    assert "OPENAI_API_KEY is set" in reason and "gpt-4o-mini" in reason
    _, reason = tiers.resolve_auto("vision", probe=machine(accelerator="cpu", offline=True, key=False))
    assert "OPENAI" not in reason


def test_margin_keeps_a_model_off_a_card_it_barely_fits():
    # musicgen-medium needs 8 GB: an 8.5 GB-free card has too little headroom, a 9.5 GB-free one is enough
    tight = machine(accelerator="cuda", vram=9.0)
    tight.gpus[0].free_gb = 8.5
    roomy = machine(accelerator="cuda", vram=10.0)
    roomy.gpus[0].free_gb = 9.5
    assert tiers.resolve_auto("music", probe=tight)[0].name == "musicgen-small"
    assert tiers.resolve_auto("music", probe=roomy)[0].name == "musicgen-medium"


def test_busy_gpu_falls_back_to_the_cpu_rule():
    probe = machine(accelerator="cuda", vram=4.0)
    probe.gpus[0].free_gb = 0.5
    spec, reason = tiers.resolve_auto("music", probe=probe)
    assert spec.name == "musicgen-small" and "device='cpu'" in reason  # a program's words; the command line's:
    with settings_named_as_flags():
        assert "--device cpu" in tiers.resolve_auto("music", probe=probe)[1]


def test_hub_is_probed_lazily_and_only_once(monkeypatch):
    with local_http(answer(200)) as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        probe = machine(accelerator="cpu", hub=HubStatus(url))
        assert picks(probe) == ("llava-0.5b", "musicgen-small")
        assert probe.hub.checked and probe.hub.reachable
    assert seen == ["HEAD /api/models?limit=1"]
    with local_http(answer(500)) as (url, seen):
        probe = machine(accelerator="cpu", hub=HubStatus(url))
        assert picks(probe) == ("builtin", "builtin")
        assert "HTTP 500" in tiers.resolve_auto("music", probe=probe)[1]


def test_cached_models_need_no_network(tmp_path):
    probe = machine(accelerator="cpu", hub=HubStatus("http://127.0.0.1:9"),
                    cached=cache_with(tmp_path, "facebook/musicgen-small"))
    assert tiers.resolve_auto("music", probe=probe)[0].name == "musicgen-small"
    assert probe.hub.checked is False


def test_registry_holds_the_memory_needs_auto_uses():
    for side, names in tiers.LADDER.items():
        specs = [find_spec(n, side) for n in names]
        assert all(s is not None and s.vram_gb > 0 and s.ram_gb > 0 and s.download_gb > 0 for s in specs)
        assert [s.vram_gb for s in specs] == sorted((s.vram_gb for s in specs), reverse=True)
    assert {m.name for m in MODELS} >= {n for names in tiers.LADDER.values() for n in names}


# --- preflight ------------------------------------------------------------------------------------


def spec(name: str, side: str = "music"):
    s = find_spec(name, side)
    assert s is not None
    return s


def test_preflight_refuses_what_cannot_fit_and_suggests_what_can(tmp_path):
    small_box = machine(accelerator="cpu", ram=4.0, ram_free=3.5, cached=cache_with(tmp_path, "llava-hf/llava-interleave-qwen-7b-hf"))
    with pytest.raises(ModelUnavailableError, match="needs ~32 GB of RAM; this machine has 4 GB") as err:
        tiers.preflight(spec("llava-7b", "vision"), device="cpu", probe=small_box)
    assert "manga2music doctor" in err.value.hint
    with pytest.raises(ModelUnavailableError, match="16 GB of VRAM; Fake 8 GB card has 8 GB"):
        tiers.preflight(spec("musicgen-large"), device="cuda", probe=machine(accelerator="cuda", vram=8.0))


def test_preflight_warns_but_respects_explicit_choices(tmp_path):
    cached = cache_with(tmp_path, "facebook/musicgen-medium")
    warnings = tiers.preflight(spec("musicgen-medium"), device="cuda",
                               probe=machine(accelerator="cuda", vram=8.0, cached=cached))
    assert len(warnings) == 1 and "may run out of memory" in warnings[0]
    warnings = tiers.preflight(spec("musicgen-medium"), device="cpu",
                               probe=machine(accelerator="cpu", ram=16.0, ram_free=6.0, cached=cached))
    assert len(warnings) == 1 and "6 GB is available" in warnings[0]
    assert tiers.preflight(spec("musicgen-medium"), device="auto",
                           probe=machine(accelerator="cuda", vram=24.0, cached=cached)) == []


def test_preflight_checks_weights_before_loading(tmp_path):
    with pytest.raises(ModelUnavailableError, match="offline mode is on") as err:
        tiers.preflight(spec("musicgen-small"), device="cpu", probe=machine(offline=True, cached=tmp_path))
    assert "manga2music models pull musicgen-small" in err.value.hint
    warnings = tiers.preflight(spec("musicgen-small"), device="cpu", probe=machine(cached=tmp_path))
    assert any("2.4 GB will be downloaded" in w for w in warnings)
    with pytest.raises(ModelUnavailableError, match="only 1 GB free"):
        tiers.preflight(spec("musicgen-small"), device="cpu", probe=machine(disk=1.0))
    with pytest.raises(ModelUnavailableError, match="unreachable"):
        tiers.preflight(spec("musicgen-small"), device="cpu", probe=machine(hub=HubStatus("x", True, False, "HTTP 503")))


def test_preflight_checks_the_device():
    with pytest.raises(ModelUnavailableError, match="CUDA is not usable"):
        tiers.preflight(spec("musicgen-small"), device="cuda", probe=machine(accelerator="cpu"))
    with pytest.raises(ModelUnavailableError, match="^device='cuda:1' asked, but CUDA is not usable"):  # as given
        tiers.preflight(spec("musicgen-small"), device="cuda:1", probe=machine(accelerator="cpu"))
    with pytest.raises(ModelUnavailableError, match="MPS"):
        tiers.preflight(spec("musicgen-small"), device="mps", probe=machine(accelerator="cpu"))
    with pytest.raises(ModelUnavailableError, match="torch"):
        tiers.preflight(spec("musicgen-small"), device="cpu", probe=machine(torch=False))
    assert tiers.preflight(spec("builtin"), device="cuda", probe=machine(accelerator="cpu", torch=False)) == []


def test_a_missing_gpu_suggests_the_cpu_for_the_model_asked_when_it_fits_there():
    """--device cuda on a machine without a GPU named another model ("this machine can run musicgen-small on the
    CPU") even when the one asked for runs on the CPU too: the user wants their model, on the CPU."""
    with pytest.raises(ModelUnavailableError) as err:
        tiers.preflight(spec("musicgen-medium"), device="cuda", probe=machine(accelerator="cpu", ram=24.0))
    assert "device='cpu'" in err.value.hint and "musicgen-medium" in err.value.hint
    assert "musicgen-small" not in err.value.hint
    with pytest.raises(ModelUnavailableError) as err:  # too big for this machine's RAM: another model, as before
        tiers.preflight(spec("musicgen-large"), device="mps", probe=machine(accelerator="cpu", ram=4.0))
    assert "device='cpu'" not in err.value.hint


def test_a_model_without_its_weights_points_to_one_that_runs_now(tmp_path):
    """llava-0.5b, not cached and the Hub unreachable, was answered with "this machine can run llava-0.5b on the
    CPU", the model that had just failed; and no hint said that builtin runs right now."""
    with pytest.raises(ModelUnavailableError) as err:
        tiers.preflight(spec("llava-0.5b", "vision"), device="cpu", probe=machine(offline=True))
    assert "name the model builtin for this run: it runs here now, with no weights" in err.value.hint
    assert "can run llava-0.5b" not in err.value.hint
    with pytest.raises(ModelUnavailableError) as err:  # another model fits and is not cached: for later
        tiers.preflight(spec("musicgen-medium"), device="cpu", probe=machine(offline=True))
    assert err.value.hint.startswith("run `manga2music models pull musicgen-medium` while online; name the model "
                                     "builtin for this run: it runs here now, with no weights; musicgen-small would "
                                     "run on the CPU once its weights are pulled")
    cached = cache_with(tmp_path, "facebook/musicgen-small")  # cached: it runs now
    with pytest.raises(ModelUnavailableError) as err:
        tiers.preflight(spec("musicgen-medium"), device="cpu", probe=machine(offline=True, cached=cached))
    assert "name musicgen-small for this run: it is cached and runs here on the CPU" in err.value.hint


def test_preflight_accepts_a_local_model_folder(tmp_path):
    local = find_spec("musicgen-small", "music").__class__(str(tmp_path), "music", "musicgen", str(tmp_path))
    assert tiers.preflight(local, device="cpu", probe=machine(offline=True)) == []


# --- the probes themselves --------------------------------------------------------------------------


def test_nvidia_smi_output_is_parsed_and_cuda_visible_devices_honoured(monkeypatch):
    text = "0, NVIDIA GeForce RTX 4090, 8.9, 24564, 23000\n1, NVIDIA A100-SXM4-80GB, 8.0, 81920, 1024\n"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = parse_nvidia_smi(text)
    assert [(g.name, g.compute_capability, round(g.total_gb)) for g in gpus] == [
        ("NVIDIA GeForce RTX 4090", "8.9", 24), ("NVIDIA A100-SXM4-80GB", "8.0", 80)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [g.index for g in parse_nvidia_smi(text)] == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert parse_nvidia_smi(text) == []


def test_torch_cuda_build_is_read_without_importing_torch():
    import torch  # the test may import it; the probe must agree with it

    assert torch_cuda_version() == torch.version.cuda


@pytest.mark.parametrize("text,expected", [
    ("__version__ = '2.13.0+cu128'\ncuda: Optional[str] = '12.8'\nhip = None\n", "12.8"),
    ("__version__ = '2.4.0'\ncuda = '12.1'\n", "12.1"),
    ("__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\n", None),
])
def test_the_cuda_version_is_read_from_the_text_of_torch_version_py(text, expected):
    """What a CUDA build's torch/version.py says, so the parser is exercised even on a CPU-only machine."""
    from manga2music.hardware import cuda_in_version_file

    assert cuda_in_version_file(text) == expected


# --- licences: --commercial picks only models whose music may be published commercially (issue #19) -----


@pytest.mark.parametrize("probe, expected", [
    (machine(accelerator="cuda", vram=24.0), ("qwen3-vl-4b", "ace-step")),
    (machine(accelerator="cuda", vram=8.0), ("smolvlm2-500m", "stable-audio-open")),
    (machine(accelerator="cpu", ram=24.0), ("smolvlm2-256m", "stable-audio-open")),
    (machine(accelerator="cpu", ram=6.0, ram_free=5.0), ("smolvlm2-256m", "builtin")),
], ids=["cuda-24GB", "cuda-8GB", "cpu", "cpu-small"])
def test_commercial_auto_keeps_to_commercially_usable_models(probe, expected):
    got = tuple(tiers.resolve_auto(side, probe=probe, commercial=True)[0] for side in ("vision", "music"))
    assert tuple(s.name for s in got) == expected
    assert all(s.commercial is True for s in got)
    reason = tiers.resolve_auto("music", probe=probe, commercial=True)[1]
    assert "commercial use allowed" in reason


def test_the_default_pick_says_its_licence_and_how_to_avoid_it():
    spec, reason = tiers.resolve_auto("music", probe=machine(accelerator="cpu", ram=24.0))
    assert spec.name == "musicgen-small"
    assert "licence cc-by-nc-4.0: not for commercial use" in reason and "--commercial" in reason


def test_every_registry_entry_states_its_licence():
    from manga2music.registry import MODELS

    missing = [m.name for m in MODELS if not m.licence]
    assert missing == []
    assert {m.name: m.commercial for m in MODELS if m.name.startswith("musicgen")} == {
        m.name: False for m in MODELS if m.name.startswith("musicgen")}

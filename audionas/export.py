"""Export a trained run as one `torch.export` program (.pt2) for deployment (Python, C++ or ExecuTorch).

The program maps a batch (any size) of features as `audionas features` computes them with the run's preset,
or of mono waveforms with `waveform=True` (then the feature frontend is part of the program), to class
probabilities. For DCASE runs the training split's band standardisation is part of both programs (a
checkpoint from before it was recorded: only of the waveform one). The file carries `audionas.json`
(classes, input, feature preset) as an extra file. Read it with
`torch.export.load(path, extra_files={"audionas.json": ""})`, which unpickles: load only files you trust.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from audionas.errors import UserError, warn
from audionas.inference import load_inference_model
from audionas.utils.atomic import atomic_write

META_FILE = "audionas.json"


def export_meta(path: str | Path) -> dict | None:
    """The `audionas.json` of an exported .pt2, read from its zip archive as JSON (nothing unpickled); None
    when `path` is no export this could read."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith(f"/extra/{META_FILE}")), None)
            meta = json.loads(z.read(name)) if name else None
    except (OSError, ValueError, RecursionError, zipfile.BadZipFile):
        return None
    return meta if isinstance(meta, dict) else None


def default_export_path(run: str | Path, waveform: bool = False, ckpt: Path | None = None) -> Path:
    """RUN/model[-waveform][-CHECKPOINT].pt2: a checkpoint other than final.pt (best.pt, checkpoints/last.pt)
    is named, so that exports of two checkpoints of one run do not overwrite each other. `ckpt`: the
    checkpoint `run` resolves to, when the caller has it already."""
    from audionas.train.trained_run import checkpoint_path, run_dir_of

    ckpt = ckpt or checkpoint_path(run)
    base = Path(run) if Path(run).is_dir() else run_dir_of(ckpt)
    stem = "model-waveform" if waveform else "model"
    return base / (stem + (f"-{ckpt.stem}" if ckpt.name != "final.pt" else "") + ".pt2")


def check_not_another_export(out: Path, ckpt: Path, kind: str) -> None:
    """UserError when the default file `out` holds the export of another checkpoint or input kind (a
    checkpoint named waveform.pt exports to the name of final.pt's waveform program)."""
    old = export_meta(out) if out.is_file() else None
    if old is None:
        return
    old_kind = old.get("input", {}).get("kind") if isinstance(old.get("input"), dict) else None
    if old_kind != kind or Path(str(old.get("run", ""))).name != ckpt.name:
        raise UserError(f"{out}: holds the export of {old.get('run')} ({old_kind} input), which this one "
                        f"would overwrite; pass --out FILE to keep both (or delete it)")


def export_run(run: str | Path, out: str | Path | None = None, waveform: bool = False,
               data: str | None = None) -> dict:
    """Export `run` to `out` (default: `default_export_path`, refused when it holds another checkpoint's
    or input kind's export), written atomically after a reload check; returns the metadata + check."""
    from audionas.train.trained_run import checkpoint_path

    ckpt = checkpoint_path(run)  # resolved once: a run without final.pt says so once
    if out is None:
        out = default_export_path(run, waveform, ckpt)
        check_not_another_export(out, ckpt, "waveform" if waveform else "features")
    if Path(out).suffix != ".pt2":
        raise UserError(f"--out {out}: expected a .pt2 file name (a torch.export program for "
                        f"torch.export.load, not {Path(out).suffix or 'a name without extension'})")
    program_module, lm = load_inference_model(ckpt, waveform, data)
    cfg = lm.config
    if waveform:
        from audionas.features import get_spec
        from audionas.inference import repeats_short_clips

        spec = get_spec(cfg.data.feature)
        # The program takes exactly clip_samples: how the run's dataset fit other lengths, for the caller.
        fill = "repeat" if repeats_short_clips(cfg.data.kind) else "zero-pad at the end"
        meta_input = {"kind": "waveform", "shape": ["batch", spec.clip_samples],
                      "sample_rate": spec.sample_rate, "shorter_clips": fill, "longer_clips": "crop"}
    else:
        meta_input = {"kind": "features", "shape": ["batch", *lm.input_shape]}
        if cfg.data.kind == "dcase2018" and cfg.data.normalize and lm.band_frontend is None:
            meta_input["standardised"] = True  # the program expects band-standardised features
            warn(f"{lm.path} records no band statistics (trained before they were kept): the "
                 f"program takes band-standardised features; --waveform includes them")
    meta = {"classes": lm.classes, "input": meta_input, "feature": cfg.data.feature, "model": cfg.model,
            "output": "class probabilities (batch, classes)", "run": str(lm.path)}
    gen = torch.Generator().manual_seed(0)
    example = 0.1 * torch.randn(2, *program_module.sample_shape, generator=gen)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's notes on its own internals
        try:
            program = torch.export.export(program_module, (example,), dynamic_shapes=({0: batch},))
        except Exception as e:  # noqa: BLE001  (any tracing failure is reported in one line)
            raise UserError(f"{lm.path}: model '{cfg.model}' cannot be exported "
                            f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={META_FILE: json.dumps(meta)})
    # Check the file itself, at other batch sizes than the traced one, before it is written.
    buf.seek(0)
    reloaded = torch.export.load(buf).module()
    diff = 0.0
    with torch.no_grad():
        for n in (1, 3):
            x = 0.1 * torch.randn(n, *program_module.sample_shape, generator=gen)
            diff = max(diff, float((reloaded(x) - program_module(x)).abs().max()))
    if diff > 1e-4:
        raise UserError(f"{lm.path}: the exported program differs from the model by {diff:.2e}; not written")
    atomic_write(out, lambda f: f.write(buf.getvalue()))
    return {**meta, "max_abs_diff": diff, "bytes": len(buf.getvalue()), "path": str(out)}


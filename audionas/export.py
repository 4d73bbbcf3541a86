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
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return meta if isinstance(meta, dict) else None


def export_run(run: str | Path, out: str | Path, waveform: bool = False, data: str | None = None) -> dict:
    """Export `run` to `out` (written atomically after a reload check); returns the metadata + check."""
    program_module, lm = load_inference_model(run, waveform, data)
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


"""The fraud scorer behind POST /v1/fraud/score: the model ``adaptlab fraud run`` saved, scored exactly as
``adaptlab fraud score`` scores a file (same loading, standardising, unscorable-row check and threshold)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.scoring import FraudScorer, saved_model_warning


@dataclass
class ServedFraudScorer(FraudScorer):
    """:class:`~adaptlab.fraud.scoring.FraudScorer` plus the LEAKY warning it is served with (None: a safe model)."""

    warning: str | None = None

    @classmethod
    def load(cls, run_dir: Path, *, allow_leaky: bool = False) -> ServedFraudScorer:
        """Load a saved run; a LEAKY model (trained under the paper protocol, its test numbers inflated) is
        refused unless ``allow_leaky``: a server hides the run folder's warnings from the people it serves."""
        run_dir = Path(run_dir)
        if not run_dir.exists():
            raise AdaptlabError(f"--fraud-model: run folder not found: {run_dir}")
        saved = FraudScorer.load(run_dir)
        warning = (saved_model_warning(run_dir) or "this model was trained under the LEAKY paper protocol") \
            if saved.leaky else None
        if saved.leaky and not allow_leaky:
            raise AdaptlabError(f"--fraud-model {run_dir} is a LEAKY model ({warning.rstrip('.')}); refusing to "
                                "serve it: pass --allow-leaky to serve it anyway")
        return cls(saved.model, saved.scaler, saved.meta, warning)

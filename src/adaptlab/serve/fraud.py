"""The fraud scorer behind POST /v1/fraud/score: the model ``adaptlab fraud run`` saved, scored exactly as
``adaptlab fraud score`` scores a file (same loading, standardising, unscorable-row check and threshold)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.model import MLP, Standardizer, predict_proba_standardised, unscorable_rows
from adaptlab.fraud.scoring import FraudScorer as SavedFraudModel, saved_model_warning


@dataclass
class FraudScorer:
    model: MLP
    scaler: Standardizer
    features: list[str]
    threshold: float
    warning: str | None  # the LEAKY warning of a paper-protocol model, served only when allowed

    @classmethod
    def load(cls, run_dir: Path, *, allow_leaky: bool = False) -> "FraudScorer":
        """Load a saved run; a LEAKY model (trained under the paper protocol, its test numbers inflated) is
        refused unless ``allow_leaky``: a server hides the run folder's warnings from the people it serves."""
        run_dir = Path(run_dir)
        if not run_dir.exists():
            raise AdaptlabError(f"--fraud-model: run folder not found: {run_dir}")
        saved = SavedFraudModel.load(run_dir)
        model, scaler, meta = saved.model, saved.scaler, saved.meta
        leaky = bool(meta.get("leaky"))
        warning = (saved_model_warning(run_dir) or "this model was trained under the LEAKY paper protocol") \
            if leaky else None
        if leaky and not allow_leaky:
            raise AdaptlabError(f"--fraud-model {run_dir} is a LEAKY model ({warning.rstrip('.')}); refusing to "
                                "serve it: pass --allow-leaky to serve it anyway")
        return cls(model, scaler, list(meta["features"]), float(meta["threshold"]), warning)

    def standardise(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's input for raw feature rows, and the positions of rows it cannot score (features so
        large that standardising overflows): those must be refused, never reported as "not fraud"."""
        standardised = self.scaler.transform(rows)
        return standardised, unscorable_rows(standardised)

    def score(self, standardised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and decisions (probability >= the saved threshold) for standardised rows."""
        probability = predict_proba_standardised(self.model, standardised)
        return probability, probability >= self.threshold

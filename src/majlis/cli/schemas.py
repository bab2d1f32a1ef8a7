"""JSON schemas of every file format, exported for editors (`majlis schema`)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from ..compare import Experiment
from ..evals import CalibrationSet, Rubric
from ..model import JudgesFile, ModelsFile, PriceTable
from ..protocol import Vote
from ..run import Event, Manifest, Outcome
from ..scenario import AgentCard, Scenario, Variant
from ..workshop import DebriefTexts

MODELS: dict[str, type[BaseModel]] = {
    "scenario": Scenario,
    "agent-card": AgentCard,
    "manifest": Manifest,
    "event": Event,
    "outcome": Outcome,
    "vote": Vote,
    "experiment": Experiment,
    "models": ModelsFile,
    "judges": JudgesFile,
    "variant": Variant,
    "prices": PriceTable,
    "rubric": Rubric,
    "debrief-texts": DebriefTexts,
    "calibration-set": CalibrationSet,
}


def export(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in MODELS.items():
        path = out_dir / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written

"""Synthetic Welsh children, the lists partners would send about them, and the truth to score matching.

Only data generated here is ever used for development and testing; no record describes a real person.
"""

from app.synthetic.population import PopulationConfig, SyntheticPopulation, generate
from app.synthetic.submissions import SubmissionBatch, submission_batches, write_submission_files

__all__ = [
    "PopulationConfig",
    "SubmissionBatch",
    "SyntheticPopulation",
    "generate",
    "submission_batches",
    "write_submission_files",
]

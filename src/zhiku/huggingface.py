"""Hugging Face libraries (transformers, sentence-transformers) as zhiku loads them: offline, quiet.

Models come from local folders only (nothing downloads at run time), and the libraries' progress
bars and notices stay out of zhiku's own output. Call ``offline_and_quiet`` before importing them:
the offline switches are read when ``huggingface_hub`` is first imported.
"""

from __future__ import annotations

import os

from zhiku.errors import DependencyMissingError


def offline_and_quiet(feature: str) -> None:
    """Set the offline switches (unless the user set them) and silence the libraries' output.

    ``feature`` names what needs transformers, for the error when it is not installed.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise DependencyMissingError(f"{feature} needs transformers", "pip install transformers") from e
    # Library progress bars and notices would interleave with zhiku's own output.
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()

"""Using trained runs: `generate` (a grid or a walk to a PNG), the service behind the page
(`service`: plain functions from a run and a text to a picture), and the page (`cvaekit serve`)."""

from cvaekit.serving.service import (
                                     MAX_IMAGES,
                                     MAX_TEMPERATURE,
                                     MAX_TEXT_CHARS,
                                     Picture,
                                     ServedRun,
                                     compare_metrics_markdown,
                                     compare_picture,
                                     generate_picture,
                                     load_runs,
                                     walk_picture,
)

__all__ = ["MAX_IMAGES", "MAX_TEMPERATURE", "MAX_TEXT_CHARS", "Picture", "ServedRun", "compare_metrics_markdown", "compare_picture",
           "generate_picture", "load_runs", "walk_picture"]

"""Training: the run (`train`), its loop and schedules, the batches it draws, the guards that
run before it (memory, the part to blame at the first step), the second stage (`fit_prior`)
and sweeps over recipe settings."""

from cvaekit.training.divergence import TrainingDiverged
from cvaekit.training.loop import TrainingLoop
from cvaekit.training.run import TrainingInterrupted, train
from cvaekit.training.schedules import epoch_order, learning_rate
from cvaekit.training.state import LoopState

__all__ = ["LoopState", "TrainingDiverged", "TrainingInterrupted", "TrainingLoop", "epoch_order",
           "learning_rate", "train"]

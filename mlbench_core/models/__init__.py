"""Models of the reference benchmarks: ResNets for CIFAR-10, logistic regression for epsilon,
the AWD-LSTM language model for Wikitext-2."""

from mlbench_core.models.logistic import LogisticRegression, l2_logistic_loss
from mlbench_core.models.lstm import AWDLSTM, StatefulLanguageModel, lm_loss, repackage_hidden
from mlbench_core.models.resnet import CifarResNet, cifar_resnet, resnet20

__all__ = [
    "AWDLSTM",
    "CifarResNet",
    "LogisticRegression",
    "StatefulLanguageModel",
    "cifar_resnet",
    "l2_logistic_loss",
    "lm_loss",
    "repackage_hidden",
    "resnet20",
]

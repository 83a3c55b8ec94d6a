"""Datasets: registry, embedded digits, 2-D toys, downloaded MNIST/Fashion-MNIST/CIFAR-10, custom files."""

from .base import DataSplit
from .registry import DATASETS, DatasetInfo, dataset_info, get_dataset, list_datasets, prepare_dataset

__all__ = ["DATASETS", "DataSplit", "DatasetInfo", "dataset_info", "get_dataset", "list_datasets", "prepare_dataset"]

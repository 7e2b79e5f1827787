"""Datasets for fast training trials: a NAS run trains hundreds of small models on the same data, so
each split is decoded once into a uint8 N x C x H x W tensor on the training device, augmented there
in batches, and normalised in the uint8 -> float conversion. Every random choice comes from an
explicit seed or `torch.Generator`: equal seeds give bitwise equal batches on CPU. The names below
are the package's public API."""

from nas.data.load import channel_stats, load_data, resize_bundle, resize_images, to_device, to_gray
from nas.data.loader import Loader, crop_flip, cutout_, num_batches
from nas.data.sources import LOADERS, DataConfig, RawData, default_root, load_synthetic, unpickle_arrays
from nas.data.splits import DataBundle, DataError, Split, split_indices

__all__ = ["LOADERS", "DataBundle", "DataConfig", "DataError", "Loader", "RawData", "Split", "channel_stats",
           "crop_flip", "cutout_", "default_root", "load_data", "load_synthetic", "num_batches",
           "resize_bundle", "resize_images", "split_indices", "to_device", "to_gray", "unpickle_arrays"]

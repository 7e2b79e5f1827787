"""Datasets for fast training trials: whole splits as uint8 tensors on the device.

A NAS run trains hundreds of small models on the same data, so the data layer is built for that:
each split is decoded once into a uint8 `N x C x H x W` tensor that lives on the training device,
augmentation (random crop, flip, cutout) runs batched on the device with per-sample parameters,
and normalisation is fused into the uint8 -> float conversion. Every random choice (validation
split, train subset, epoch order, augmentation) comes from an explicit seed or `torch.Generator`,
so equal seeds give bitwise equal batches on CPU.

`sources` (the config and one reader per data set), `splits` (Split, DataBundle, the balanced
split rule), `load` (`load_data`: read, split, move to the device), `loader` (batches and
augmentation on the device). The names below are the package's public API.
"""

from nas.data.load import channel_stats, load_data, resize_bundle, resize_images, to_device, to_gray
from nas.data.loader import Loader, crop_flip, cutout_, num_batches
from nas.data.sources import LOADERS, DataConfig, RawData, default_root, load_synthetic, unpickle_arrays
from nas.data.splits import DataBundle, DataError, Split, split_indices

__all__ = ["LOADERS", "DataBundle", "DataConfig", "DataError", "Loader", "RawData", "Split", "channel_stats",
           "crop_flip", "cutout_", "default_root", "load_data", "load_synthetic", "num_batches",
           "resize_bundle", "resize_images", "split_indices", "to_device", "to_gray", "unpickle_arrays"]

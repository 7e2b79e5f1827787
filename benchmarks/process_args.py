"""The flags of the whole-process timing scripts (`bare_run.py`, `seeds_run.py`): the same data,
model, epochs and threads on both sides of `train_throughput.py --part process`."""

import argparse

import torch


def parser(train: int) -> argparse.ArgumentParser:
    """The shared flags; `train`: the script's default train-set size. Each script adds its own."""
    p = argparse.ArgumentParser()
    p.add_argument("--root", default="/tmp/cifar")
    p.add_argument("--data", default="cifar10", choices=("cifar10", "synthetic"))
    p.add_argument("--synthetic", type=int, nargs=2, default=(512, 256), metavar=("TRAIN", "TEST"))
    p.add_argument("--preset", default="shufflenet_v1_g3")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--train", type=int, default=train)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    return p


def parse(p: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments, torch's threads set (0: all cores)."""
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args

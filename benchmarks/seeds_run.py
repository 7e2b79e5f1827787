"""The pipeline users start from (../shared/seeds/004), as a whole process, on a nas-built model.

torchvision's CIFAR10 dataset + PIL RandomCrop(32, padding=4) / RandomHorizontalFlip / ToTensor
/ Normalize + DataLoader(batch 128, shuffle=True, num_workers=0) for training, a SGD + OneCycleLR
step and `loss.item()` every batch, then the seed's test(): DataLoader(batch 100) under
`torch.no_grad`, `loss.item()` and `.sum().item()` per batch. The train set is the first
`--train` images (the seed trains on all 50,000; tqdm and prints left out). Prints one JSON line
of phase seconds for `train_throughput.py --part process`.

    python benchmarks/seeds_run.py --root /tmp/cifar --train 10000
"""

import time

T0 = time.perf_counter()

import json  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as transforms  # noqa: E402

from nas.builder import build_model  # noqa: E402
from nas.presets import load_preset  # noqa: E402
from process_args import parse, parser  # noqa: E402 - the sibling module

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)  # the seed's constants


class SeedCIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR10, minus the md5 checks (the local copy's pickles differ in bytes)."""

    meta = {**torchvision.datasets.CIFAR10.meta, "md5": None}

    def _check_integrity(self) -> bool:
        return True


class ArrayCIFAR(torch.utils.data.Dataset):
    """What CIFAR10.__getitem__ does, over nas's synthetic images (plumbing checks only)."""

    def __init__(self, x, y, transform):
        from PIL import Image

        self.image, self.x, self.y, self.transform = Image.fromarray, x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.transform(self.image(self.x[i])), int(self.y[i])


def main() -> None:
    args = parse(parser(train=10000))
    t = {"imports": time.perf_counter() - T0}

    start = time.perf_counter()
    transform_train = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    transform_test = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    if args.data == "synthetic":
        from nas.data import DataConfig, load_synthetic

        raw = load_synthetic(DataConfig(name="synthetic", synthetic_train=args.synthetic[0],
                                        synthetic_test=args.synthetic[1]))
        trainset = ArrayCIFAR(raw.train_x.transpose(0, 2, 3, 1), raw.train_y, transform_train)
        testset = ArrayCIFAR(raw.test_x.transpose(0, 2, 3, 1), raw.test_y, transform_test)
    else:
        trainset = SeedCIFAR10(args.root, train=True, download=False, transform=transform_train)
        testset = SeedCIFAR10(args.root, train=False, download=False, transform=transform_test)
    trainset = torch.utils.data.Subset(trainset, range(min(args.train, len(trainset))))
    trainloader = torch.utils.data.DataLoader(trainset, batch_size=128, shuffle=True)
    testloader = torch.utils.data.DataLoader(testset, batch_size=100, shuffle=False)
    t["data"] = time.perf_counter() - start

    start = time.perf_counter()
    torch.manual_seed(0)
    net = build_model(load_preset(args.preset, width=args.width, resolution=32, num_classes=10))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    lr_scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, 0.1, steps_per_epoch=len(trainloader), epochs=args.epochs, div_factor=25,
        final_div_factor=10000, pct_start=0.3)
    t["model"] = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(args.epochs):
        net.train()
        epoch_loss = 0.0
        for inputs, targets in trainloader:
            optimizer.zero_grad()
            loss = criterion(net(inputs), targets)
            loss.backward()
            optimizer.step()
            lr_scheduler.step()
            epoch_loss += loss.item()
    t["train"] = time.perf_counter() - start

    start = time.perf_counter()
    net.eval()
    correct = total = 0
    test_loss = 0.0
    with torch.no_grad():
        for inputs, targets in testloader:
            outputs = net(inputs)
            test_loss += criterion(outputs, targets).item()
            correct += outputs.max(1)[1].eq(targets).sum().item()
            total += targets.size(0)
    t["eval"] = time.perf_counter() - start
    print(json.dumps({"seconds": t, "loss": epoch_loss / max(1, len(trainloader)),
                      "acc": {"test": correct / max(1, total)}, "images": len(trainset)}))


if __name__ == "__main__":
    main()

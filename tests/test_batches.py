"""Device-resident batching: the batch-wise augmentation has the statistics of the per-image
torchvision transforms (RandomCrop with padding + RandomHorizontalFlip), on CPU and on CUDA."""
from collections import Counter

import pytest
import torch
from scipy.stats import chi2_contingency, chisquare

from harness.data.batches import Augment, Batches
from harness.data.registry import Dataset, Split

SIZE, PAD, N = 8, 2, 4000
CELLS = (2 * PAD + 1) ** 2
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs CUDA: run `pytest -m gpu` on a GPU runner")


def _coded_split(n: int) -> Split:
    """n copies of one image whose pixel (r, c) holds r * SIZE + c + 1 (0 only in the padding)."""
    image = (torch.arange(SIZE * SIZE) + 1).view(1, 1, SIZE, SIZE).to(torch.uint8)
    return Split(image.repeat(n, 1, 1, 1), torch.zeros(n, dtype=torch.int64))


def _identity_dataset(split: Split) -> Dataset:
    """mean 0 and std 1/255: the normalisation leaves pixel values as they are."""
    return Dataset(name="coded", num_classes=1, train=split, test=split, mean=(0.0,),
                   std=(1 / 255,), flip=True, source="test")


def _decode(img: torch.Tensor) -> tuple[int, int, bool]:
    """(dy, dx, flipped) of one augmented coded image (1, SIZE, SIZE)."""
    plane = img[0].round().long()
    i, j = [int(t) for t in (plane > 0).nonzero()[0]]
    flipped = bool(plane[i, j] > plane[i, j + 1])
    v = int(plane[i, j]) - 1
    r, c = divmod(v, SIZE)
    col = SIZE - 1 - j if flipped else j
    return r - i + PAD, c - col + PAD, flipped


def _batched(device: str) -> list:
    split = _coded_split(N)
    batches = Batches(split, _identity_dataset(split), batch_size=500, device=torch.device(device),
                      train=True, augment=Augment(crop_padding=PAD, flip=True), seed=1)
    return [_decode(img.cpu()) for x, _ in batches for img in x]


def _per_image() -> list:
    from torchvision.transforms import v2

    torch.manual_seed(1)
    transform = v2.Compose([v2.RandomCrop(SIZE, padding=PAD), v2.RandomHorizontalFlip()])
    split = _coded_split(N)
    return [_decode(transform(split.images[i]).float()) for i in range(N)]


def _offset_counts(samples: list) -> list:
    counts = Counter((dy, dx) for dy, dx, _ in samples)
    return [counts[(dy, dx)] for dy in range(2 * PAD + 1) for dx in range(2 * PAD + 1)]


def _flip_count(samples: list) -> int:
    return sum(f for _, _, f in samples)


def _assert_same_statistics(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs) == N
    offsets = {(dy, dx) for dy, dx, _ in ours}
    assert offsets == {(dy, dx) for dy, dx, _ in theirs}           # same support: 0..2*PAD
    assert len(offsets) == CELLS
    assert chisquare(_offset_counts(ours)).pvalue > 1e-3           # uniform over the offsets
    assert chi2_contingency([_offset_counts(ours), _offset_counts(theirs)]).pvalue > 1e-3
    flips = [_flip_count(ours), _flip_count(theirs)]
    assert all(abs(f - N / 2) < 4 * (N / 4) ** 0.5 for f in flips)  # p = 1/2 within 4 sigma
    table = [[f, N - f] for f in flips]
    assert chi2_contingency(table).pvalue > 1e-3


def test_decode_reads_known_crops():
    split = _coded_split(1)
    padded = torch.nn.functional.pad(split.images.float(), (PAD,) * 4)
    crop = padded[0, :, 3:3 + SIZE, 1:1 + SIZE]
    assert _decode(crop) == (3, 1, False)
    assert _decode(crop.flip(-1)) == (3, 1, True)


def test_cpu_batches_match_per_image_torchvision_statistics():
    _assert_same_statistics(_batched("cpu"), _per_image())


def test_no_augmentation_leaves_images_intact():
    split = _coded_split(64)
    batches = Batches(split, _identity_dataset(split), batch_size=64, device=torch.device("cpu"),
                      train=True, augment=Augment(), seed=0)
    assert {_decode(img) for x, _ in batches for img in x} == {(PAD, PAD, False)}


@pytest.mark.gpu
@needs_cuda
def test_cuda_batches_match_cpu_statistics():
    _assert_same_statistics(_batched("cuda"), _batched("cpu"))

"""harness.loader.PrefetchLoader: order, integrity, nesting, errors, early exit, real prefetch."""

import collections
import threading

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from harness.loader import PrefetchLoader, map_tensors, pin_supported, tensors_of


def _batches(n=7, shape=(3, 4)):
    return [torch.full(shape, float(i)) + torch.arange(shape[-1]) for i in range(n)]


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("depth", [1, 3])
def test_batches_arrive_intact_and_in_order(background, depth):
    src = _batches()
    got = list(PrefetchLoader(src, device="cpu", depth=depth, background=background))
    assert len(got) == len(src)
    for a, b in zip(got, src):
        assert torch.equal(a, b)


def test_dataloader_source_with_workers_keeps_order_and_len():
    ds = TensorDataset(torch.arange(50).float().view(50, 1), torch.arange(50))
    dl = DataLoader(ds, batch_size=8, num_workers=2, pin_memory=pin_supported())
    loader = PrefetchLoader(dl, device="cpu", depth=2)
    assert len(loader) == 7
    idx = torch.cat([y for _, y in loader])
    assert torch.equal(idx, torch.arange(50))
    assert loader.batches == 7
    # a second epoch works (re-iterable source)
    assert sum(1 for _ in loader) == 7


def test_nested_batches_keep_their_structure():
    Pair = collections.namedtuple("Pair", "x y")
    src = [{"a": Pair(torch.ones(2) * i, [torch.zeros(1), "tag"]), "n": i} for i in range(3)]
    out = list(PrefetchLoader(src, device="cpu"))
    for i, b in enumerate(out):
        assert isinstance(b, dict) and isinstance(b["a"], Pair)
        assert torch.equal(b["a"].x, torch.ones(2) * i) and b["a"].y[1] == "tag" and b["n"] == i


def test_map_and_list_tensors():
    b = (torch.ones(1), {"k": [torch.zeros(2)]}, 3)
    assert [t.shape for t in tensors_of(b)] == [torch.Size([1]), torch.Size([2])]
    doubled = map_tensors(lambda t: t + 1, b)
    assert torch.equal(doubled[1]["k"][0], torch.ones(2)) and doubled[2] == 3


def test_source_exception_reaches_the_consumer():
    class Boom(RuntimeError):
        pass

    def src():
        yield torch.zeros(1)
        raise Boom("disk gone")

    it = iter(PrefetchLoader(src(), device="cpu"))
    assert torch.equal(next(it), torch.zeros(1))
    with pytest.raises(Boom, match="disk gone"):
        next(it)


def test_early_break_stops_the_thread():
    def endless():
        i = 0
        while True:
            yield torch.tensor([i])
            i += 1

    before = {t for t in threading.enumerate() if t.name == "PrefetchLoader"}
    loader = PrefetchLoader(endless(), device="cpu", depth=2)
    it = iter(loader)
    for k, b in enumerate(it):
        assert b.item() == k
        if k == 5:
            break
    it.close()
    alive = {t for t in threading.enumerate() if t.name == "PrefetchLoader"} - before
    for t in alive:
        t.join(timeout=2)
    assert not any(t.is_alive() for t in alive)


def test_source_runs_ahead_of_the_consumer():
    produced = [threading.Event() for _ in range(3)]

    def src():
        for i in range(3):
            produced[i].set()
            yield torch.tensor([i])

    it = iter(PrefetchLoader(src(), device="cpu", depth=2))
    first = next(it)
    # while the consumer still holds batch 0, the thread fetches batch 1 on its own
    assert produced[1].wait(timeout=5), "the loader did not prefetch"
    assert first.item() == 0 and [b.item() for b in it] == [1, 2]


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        PrefetchLoader([], depth=0)
    if not pin_supported():
        with pytest.raises(ValueError, match="pin=True"):
            PrefetchLoader([], device="cpu", pin=True)
        with pytest.raises(ValueError, match="no CUDA"):
            PrefetchLoader([], device="cuda")
    with pytest.raises(TypeError):
        len(PrefetchLoader(iter([])))


def test_wait_time_is_recorded():
    loader = PrefetchLoader(_batches(3), device="cpu")
    list(loader)
    assert loader.wait_s >= 0.0 and loader.batches == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs cuda")
def test_cuda_batches_equal_host_batches():
    src = [torch.randn(64, 1024) for _ in range(5)]
    out = [b.cpu() for b in PrefetchLoader(src, device="cuda", depth=2)]
    assert all(torch.equal(a, b) for a, b in zip(out, src))


def test_prefetch_threads_waits_for_a_stopped_producer():
    from harness.loader import prefetch_threads

    for k, _ in enumerate(PrefetchLoader(iter(range(1000)), depth=2)):
        if k == 1:
            break
    assert prefetch_threads(wait_s=5.0) == []


def test_shutdown_workers_ends_persistent_workers():
    from harness.loader import shutdown_workers

    loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4, num_workers=1, persistent_workers=True)
    assert [b[0].tolist() for b in loader] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    workers = list(loader._iterator._workers)
    shutdown_workers(loader)
    assert all(not w.is_alive() for w in workers)
    shutdown_workers(DataLoader(TensorDataset(torch.arange(8.0))))  # no workers started: nothing to do


def test_slow_sources_are_seeded_by_index_and_sharded_by_worker():
    from types import SimpleNamespace

    from harness.data.slow import ShardedStream, SlowItems, SlowSource

    cfg = SimpleNamespace(batches=3, batch=2, dim=4, samples=13, features=5, load_ms=0.0)
    assert [i for i, _ in SlowSource(cfg)] == [0, 1, 2] and len(SlowSource(cfg)) == 3
    assert torch.equal(list(SlowSource(cfg, seed=5))[0][1], list(SlowSource(cfg, seed=4))[1][1])
    with pytest.raises(RuntimeError, match="failed at batch 1"):
        list(SlowSource(cfg, fail_at=1))
    assert torch.equal(SlowItems(cfg)[3][1], SlowItems(cfg)[3][1]) and len(SlowItems(cfg)) == 13
    assert list(ShardedStream(cfg)) == list(range(13))  # outside a worker: every shard
    got = sorted(int(i) for b in DataLoader(ShardedStream(cfg), batch_size=4, num_workers=2) for i in b)
    assert got == list(range(13))

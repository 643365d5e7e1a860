"""A prefetching, pinned-memory loader: batches arrive on the device, in order, ahead of use.

Wrap any iterable of batches (a ``torch.utils.data.DataLoader``, a list, a generator)::

    loader = PrefetchLoader(DataLoader(ds, batch_size=256, pin_memory=True), device="cuda", depth=2)
    for x, y in loader:          # x, y already on the GPU
        ...

What it does, and why:

* A background thread pulls batches from the source and, when ``pin`` is on, copies them
  into page-locked (pinned) host memory, keeping up to ``depth`` batches ready in a queue.
  Loading and collating then overlap the consumer's work instead of running between steps
  (``DataLoader(num_workers=0)`` does everything in the consumer's thread otherwise).
* On CUDA the host-to-device copy of batch i+1 is issued on a side stream with
  ``non_blocking=True`` *before* batch i is handed out, so the copy overlaps the compute on
  batch i. A copy from pageable memory cannot do that: the driver first stages it through
  its own pinned buffer and the host waits (CUDA C++ Best Practices Guide, "Pinned Memory";
  PyTorch docs, "Use pinned memory buffers").
* Correctness across streams: before a batch is yielded, the consumer's current stream
  waits on an event recorded after its copy (no read before the copy lands), and every
  tensor of the batch is ``record_stream``-ed on the consumer's stream, so the caching
  allocator does not hand its memory to the side stream while the consumer still reads it.
* Order is the source's order (one producer, a FIFO queue). An exception raised by the
  source is re-raised in the consumer, with its original traceback. Leaving the loop early
  (``break``) stops the thread.

Batches may be tensors or (nested) tuples, lists, namedtuples and dicts of tensors; other
leaves (ints, strings) pass through unchanged. Pinning needs an accelerator: on a CPU-only
torch :func:`pin_supported` is False, ``pin=None`` then means no pinning, and ``pin=True``
raises ValueError.

Attributes after (or during) an iteration: ``wait_s``, seconds the consumer spent blocked
waiting for the next batch (a loader that keeps up shows ~0), and ``batches``, batches
delivered.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, cast

import torch

__all__ = [
    "PrefetchLoader",
    "map_tensors",
    "peek_order",
    "pin_supported",
    "prefetch_threads",
    "shutdown_workers",
    "tensors_of",
]

_END = object()

#: ``multiprocessing_context`` for DataLoader workers that start at once: "fork" where the
#: platform has it. The drills worker is a spawned process, so its default start method is
#: spawn too, and each spawned DataLoader worker re-imports torch (seconds each on a busy
#: machine). Forked workers must not touch CUDA: the parent pins and copies.
FAST_START = "fork" if "fork" in mp.get_all_start_methods() else None


class _Failure:
    """The source raised: carried through the queue and re-raised in the consumer."""

    def __init__(self, exc: BaseException):
        self.exc = exc


@functools.lru_cache(maxsize=1)
def pin_supported() -> bool:
    """True when this torch can allocate page-locked host memory (needs a CUDA device)."""
    return torch.cuda.is_available()


def map_tensors(fn: Callable[[torch.Tensor], Any], batch: Any) -> Any:
    """Apply ``fn`` to every tensor of a (nested) tuple/list/namedtuple/dict batch.

    Containers keep their type (a namedtuple stays that namedtuple, a dict subclass keeps its
    class when it can be built from pairs); non-tensor leaves are returned unchanged.
    """
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(map_tensors(fn, v) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(map_tensors(fn, v) for v in batch)
    if isinstance(batch, Mapping):
        items = [(k, map_tensors(fn, v)) for k, v in batch.items()]
        try:
            return cast(Any, type(batch))(items)
        except TypeError:  # a mapping type that cannot be built from pairs
            return dict(items)
    return batch


def tensors_of(batch: Any) -> list[torch.Tensor]:
    """Every tensor of a (nested) batch, in traversal order."""
    found: list[torch.Tensor] = []

    def keep(t: torch.Tensor) -> torch.Tensor:
        found.append(t)
        return t

    map_tensors(keep, batch)
    return found


def prefetch_threads(wait_s: float = 0.0) -> list[threading.Thread]:
    """The :class:`PrefetchLoader` producer threads still alive after waiting up to ``wait_s``
    seconds for them to end (a producer notices the stop flag within ~50 ms)."""
    deadline = time.monotonic() + wait_s
    while True:
        alive = [t for t in threading.enumerate() if t.name == "PrefetchLoader" and t.is_alive()]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.01)


def peek_order(sampler: Any) -> list[int]:
    """The indices a seeded ``RandomSampler`` (one with a ``generator``) yields on its next pass,
    drawn without disturbing that pass: its generator's state is restored afterwards."""
    state = sampler.generator.get_state()
    order = list(sampler)
    sampler.generator.set_state(state)
    return order


def shutdown_workers(loader: Any) -> None:
    """End a ``DataLoader``'s persistent worker processes now rather than at interpreter exit
    (no-op for a loader that has not started any)."""
    it = getattr(loader, "_iterator", None)  # the persistent workers' iterator, kept between epochs
    if it is not None and getattr(it, "_workers", None):
        it._shutdown_workers()


class PrefetchLoader:
    """Iterate ``source`` with batches moved to ``device`` ahead of use (module docstring).

    Args:
        source: any iterable of batches; re-iterable sources (a DataLoader, a list) can be
            iterated again for each epoch.
        device: where batches go (``"cuda"``, ``"cuda:1"``, ``"cpu"``); None leaves them where
            they are (then the loader only prefetches on its thread).
        depth: batches prepared ahead in the queue, >= 1.
        pin: copy batches into pinned memory on the thread; None means "when the device is
            CUDA and pinning is supported". Tensors already pinned (``DataLoader(pin_memory=
            True)``) are not copied again.
        background: run the source on a thread (True) or in the consumer's thread (False:
            only the CUDA copy is then ahead by one batch).

    Raises:
        ValueError: ``depth < 1``, ``pin=True`` where pinning is unsupported, or a CUDA
            device on a machine without one.
    """

    def __init__(
        self,
        source: Iterable,
        device: str | torch.device | None = None,
        *,
        depth: int = 2,
        pin: bool | None = None,
        background: bool = True,
    ):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1 (batches prepared ahead), got {depth!r}")
        self.source = source
        self.device = torch.device(device) if device is not None else None
        if self.device is not None and self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {self.device} asked for, but torch sees no CUDA GPU; use device='cpu'")
        if pin and not pin_supported():
            raise ValueError(
                "pin=True needs page-locked memory, which needs a CUDA device; "
                "use pin=None (pin where supported) or pin=False"
            )
        self.pin = (self.device is not None and self.device.type == "cuda" and pin_supported()) if pin is None else pin
        self.depth = depth
        self.background = background
        self.wait_s = 0.0
        self.batches = 0

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]  # TypeError for sources without a length

    # -- the producer side ------------------------------------------------------------------
    def _host_batches(self) -> Generator[Any, None, None]:
        """Batches from the source, pinned if asked, in order; from a thread when ``background``."""
        prepare = self._pin if self.pin else (lambda b: b)
        if not self.background:
            for b in self.source:
                yield prepare(b)
            return
        q: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for b in self.source:
                    if not put(prepare(b)):
                        return
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, who re-raises it
                put(_Failure(e))
                return
            put(_END)

        thread = threading.Thread(target=produce, name="PrefetchLoader", daemon=True)
        thread.start()
        try:
            while True:
                t0 = time.perf_counter()
                item = q.get()
                self.wait_s += time.perf_counter() - t0
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)

    @staticmethod
    def _pin(batch: Any) -> Any:
        return map_tensors(lambda t: t if t.is_pinned() else t.pin_memory(), batch)

    # -- the consumer side ------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        self.wait_s, self.batches = 0.0, 0
        host = self._host_batches()
        try:
            if self.device is None or self.device.type != "cuda":
                for b in host:
                    out = b if self.device is None else map_tensors(lambda t: t.to(self.device), b)
                    self.batches += 1
                    yield out
                return
            yield from self._cuda_iter(host)
        finally:
            host.close()  # stops the producer thread when the consumer leaves early

    def _cuda_iter(self, host: Iterator[Any]) -> Iterator[Any]:
        device = self.device
        side = torch.cuda.Stream(device)

        def start_copy(b: Any) -> tuple[Any, Any, torch.cuda.Event]:
            with torch.cuda.stream(side):
                moved = map_tensors(lambda t: t.to(device, non_blocking=True), b)
                done = torch.cuda.Event()
                done.record(side)
            return moved, b, done  # b: keeps the host source alive until its copy has landed

        nxt = next(host, _END)
        pending = start_copy(nxt) if nxt is not _END else None
        while pending is not None:
            moved, _, done = pending
            nxt = next(host, _END)
            pending = start_copy(nxt) if nxt is not _END else None  # copy i+1 before handing out i
            consumer = torch.cuda.current_stream(device)
            consumer.wait_event(done)
            for t in tensors_of(moved):
                if t.device.type == "cuda":
                    t.record_stream(consumer)  # allocated on `side`, read on `consumer`
            self.batches += 1
            yield moved

def test_workdir_is_removed_with_its_context(monkeypatch):
    """A scratch folder the context made goes with it (nothing a task starts outlives it), unless
    DRILLS_KEEP_WORKDIR=1 asks to keep it."""
    import gc

    import torch

    from harness import REGISTRY
    from harness.context import Context, TaskRecord

    cls = REGISTRY.get("fundamentals.manual_matmul")
    for keep, exists_after in (("0", False), ("1", True)):
        monkeypatch.setenv("DRILLS_KEEP_WORKDIR", keep)
        ctx = Context(cls(), mode="check", device="cpu", dtype=torch.float32, size="tiny", rng_seed=0,
                      record=TaskRecord(id=cls.id))  # fmt: skip
        path = ctx.workdir
        (path / "trace.json").write_text("{}")
        del ctx
        gc.collect()
        assert path.exists() == exists_after
        if exists_after:
            import shutil

            shutil.rmtree(path)


def test_workdir_goes_inside_the_runners_scratch_folder(tmp_path, monkeypatch):
    """Under the runner, a task's scratch folder lies inside the worker's folder, which the runner
    removes even when it had to kill the worker mid-task."""
    import torch

    from harness import REGISTRY
    from harness.context import Context, TaskRecord

    monkeypatch.setenv("DRILLS_SCRATCH_DIR", str(tmp_path))
    cls = REGISTRY.get("fundamentals.manual_matmul")
    ctx = Context(cls(), mode="check", device="cpu", dtype=torch.float32, size="tiny", rng_seed=0,
                  record=TaskRecord(id=cls.id))  # fmt: skip
    assert ctx.workdir.parent == tmp_path


def test_a_prepared_that_waits_is_timed_as_waiting(monkeypatch):
    """``Prepared(waits=True)`` (a data loader, a server) is measured as ``ctx.measure(..., waits=True)``
    is, so a task's default bench and every front end judge its samples by run-queue delay."""
    import torch

    import harness.context as context
    from harness import REGISTRY, Prepared
    from harness.context import Context, TaskRecord

    seen = []
    real = context.measure
    monkeypatch.setattr(context, "measure", lambda fn, device, **kw: seen.append(kw["waits"]) or real(fn, device, **kw))
    cls = REGISTRY.get("fundamentals.manual_matmul")
    ctx = Context(
        cls(), mode="bench", device="cpu", dtype=torch.float32, size="tiny", rng_seed=0, record=TaskRecord(id=cls.id)
    )
    for p in (Prepared(fn=lambda: None), Prepared(fn=lambda: None, waits=True)):
        ctx.measure("x", p, min_run_time_s=0.01)
    ctx.measure("x", Prepared(fn=lambda: None), waits=True, min_run_time_s=0.01)
    assert seen == [False, True, True]

"""kernels.ddp.buckets helpers of m5.bucket_tuning's bench: the hidden all-reduce share and cap labels."""

from __future__ import annotations

from kernels.ddp.buckets import cap_label, ddp_buckets, hidden_share


def test_hidden_share_from_the_three_step_times():
    assert hidden_share(t_ddp=10.0, t_no_sync=10.0, t_allreduce=4.0) == 1.0  # communication fully hidden
    assert hidden_share(t_ddp=14.0, t_no_sync=10.0, t_allreduce=4.0) == 0.0  # none hidden
    assert hidden_share(t_ddp=11.0, t_no_sync=10.0, t_allreduce=4.0) == 0.75
    assert hidden_share(t_ddp=9.0, t_no_sync=10.0, t_allreduce=4.0) == 1.0  # noise clipped
    assert hidden_share(t_ddp=20.0, t_no_sync=10.0, t_allreduce=4.0) == 0.0


def test_cap_labels_and_the_reverse_order_plan():
    assert cap_label(None) == "cap=default(25MiB)" and cap_label(0.5) == "cap=0.5MiB"
    assert ddp_buckets([4, 4, 4], 8 / 2**20) == [8, 4]  # last two first, then the first

"""PyTorch module conventions: factory kwargs, constructor flags, buffers that keep their dtype."""

import pytest
import torch

import asrec
from asrec.modules import (
    AdaptiveFrequencyFilter,
    DynamicAttention,
    FeedForward,
    FourierSmoothing,
    HybridLayer,
    SeasonalAttention,
)

SMALL = dict(n_items=12, max_seq_length=5, hidden_size=8, n_heads=2, inner_size=8)


@pytest.mark.parametrize("build", [
    lambda **f: asrec.ASRecModel(**SMALL, **f),
    lambda **f: asrec.ASRec(hidden_size=8, max_seq_length=5, n_heads=2, inner_size=8, **f),
    lambda **f: HybridLayer(8, 2, 5, 8, **f),
    lambda **f: SeasonalAttention(8, 2, 5, **f),
    lambda **f: DynamicAttention(8, 2, **f),
    lambda **f: FeedForward(8, 8, **f),
    lambda **f: FourierSmoothing(8, **f),
    lambda **f: AdaptiveFrequencyFilter(8, **f),
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_modules_take_device_and_dtype_factory_kwargs(build, dtype):
    module = build(device="cpu", dtype=dtype)
    assert {p.dtype for p in module.parameters()} == {dtype}
    assert {t.device.type for t in module.state_dict().values()} == {"cpu"}
    on_meta = build(device="meta")
    assert {p.device.type for p in on_meta.parameters()} == {"meta"}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_filter_quantile_level_keeps_its_float32_value_in_low_precision(dtype):
    built = asrec.ASRecModel(**SMALL, dtype=dtype)
    cast = asrec.ASRecModel(**SMALL).to(dtype)
    for model in (built, cast):
        for layer in model.encoder.layers:
            threshold = layer.seasonal.frequency_filter.threshold
            assert threshold.dtype == torch.float32 and threshold.item() == pytest.approx(0.8, abs=1e-7)
    assert asrec.ASRecModel(**SMALL).double().encoder.layers[0].seasonal.frequency_filter.threshold.dtype \
        == torch.float64


def test_check_values_is_a_constructor_argument():
    items, lengths = torch.tensor([[1, 99, 0, 0, 0]]), torch.tensor([2])
    with pytest.raises(ValueError, match="item_seq: values must lie in"):
        asrec.ASRecModel(**SMALL)(items, lengths)
    unchecked = asrec.ASRecModel(**SMALL, check_values=False)
    assert unchecked.check_values is False
    # no model check: on CPU tensors the input stage op's own contract names the id (free there; on
    # a GPU it reads no values)
    with pytest.raises(ValueError, match=r"input_stage: item_seq must lie in \[0, 11\], got min 0, max 99"):
        unchecked(items, lengths)

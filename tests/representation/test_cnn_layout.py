"""The CNN encoders keep their conv weights channels-last: same values out, same state_dict."""
import numpy as np
import pytest
import torch
from gymnasium import spaces

from representation.encoders import make_encoder

IMAGES = spaces.Box(0, 255, (4, 44, 44), np.uint8)


@pytest.mark.parametrize("name", ["nature", "impala"])
def test_channels_last_weights_change_no_output_and_no_saved_value(name):
    torch.manual_seed(0)
    encoder = make_encoder(name, IMAGES)
    convs = [m.weight for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs)

    contiguous = make_encoder(name, IMAGES)
    contiguous.load_state_dict(encoder.state_dict())
    contiguous.convs.to(memory_format=torch.contiguous_format)
    obs = torch.randint(0, 256, (6, *IMAGES.shape), dtype=torch.uint8)
    torch.testing.assert_close(encoder(obs), contiguous(obs), rtol=1e-5, atol=1e-6)

    saved = {key: value.contiguous() for key, value in encoder.state_dict().items()}
    reloaded = make_encoder(name, IMAGES)
    reloaded.load_state_dict(saved)
    assert torch.equal(reloaded(obs), encoder(obs))


def test_an_adam_step_on_channels_last_weights_matches_one_on_contiguous_weights():
    torch.manual_seed(0)
    encoder = make_encoder("nature", IMAGES)
    contiguous = make_encoder("nature", IMAGES)
    contiguous.load_state_dict(encoder.state_dict())
    contiguous.convs.to(memory_format=torch.contiguous_format)
    obs = torch.randint(0, 256, (6, *IMAGES.shape), dtype=torch.uint8)
    for net in (encoder, contiguous):
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        net(obs).square().mean().backward()
        optimizer.step()
    for a, b in zip(encoder.parameters(), contiguous.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

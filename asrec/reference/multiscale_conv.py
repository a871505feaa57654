"""The seasonal branch's three position-channel convolutions (SPEC section 4)."""

import torch
import torch.nn.functional as F

CONV_KERNEL_SIZES = (3, 5, 7)


def multiscale_conv_ref(context: torch.Tensor, conv_weights: tuple, conv_biases: tuple) -> list:
    """The three convolutions of SPEC section 4.

    The published ``Conv1d(N, N, k)`` layers treat the N positions as channels and slide
    along the hidden axis with 'same' padding. (They stay three convolutions: merging them
    into one with 3N output channels would zero-pad the kernels to 7 taps, and the padded
    taps are real multiply-adds for a direct convolution.)

    context: (batch, seq_len, hidden); conv_weights: (N, N, 3), (N, N, 5), (N, N, 7);
    conv_biases: three (N,). Returns [small, middle, large], each (batch, seq_len, hidden).
    """
    return [F.conv1d(context, weight, bias, padding=weight.shape[-1] // 2)
            for weight, bias in zip(conv_weights, conv_biases)]

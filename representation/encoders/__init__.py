"""Encoders: observation -> feature vector. Any agent takes any of them (``--encoder NAME``)."""
from representation.encoders.base import Encoder, encode, is_image_space
from representation.encoders.cnn import ImpalaCNN, NatureCNN
from representation.encoders.io import EncoderHandOver, load_encoder_weights, read_encoder_file, save_encoder
from representation.encoders.mlp import MLPEncoder
from representation.encoders.registry import (default_encoder_name, encoder_names, make_encoder,
                                              register_encoder)

register_encoder("mlp")(MLPEncoder)
register_encoder("nature")(NatureCNN)
register_encoder("impala")(ImpalaCNN)

__all__ = ["Encoder", "MLPEncoder", "NatureCNN", "ImpalaCNN", "make_encoder", "register_encoder",
           "encoder_names", "default_encoder_name", "is_image_space", "encode", "save_encoder",
           "read_encoder_file", "load_encoder_weights", "EncoderHandOver"]

# Last, as they import this package: "gnn", and the generative models' "ddpm" and "flow".
import representation.generative  # noqa: E402,F401
import representation.gnn.encoder  # noqa: E402,F401

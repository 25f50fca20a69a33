"""Self-supervised pre-training of encoders: SimCLR, MoCo v2, BYOL, SimSiam and the losses
they (and metric learning) use.

``SimCLR(encoder).fit(observations, epochs=...)`` trains ``encoder`` in place; hand it to agents
with ``representation.encoders.save_encoder(method.encoder, name, options, path)``.
"""
from representation.ssl.byol import BYOL
from representation.ssl.losses import (contrastive_loss, info_nce, lifted_structured_loss, n_pair_loss,
                                       negative_cosine, normalized_mse, nt_xent, triplet_loss)
from representation.ssl.method import SSLMethod
from representation.ssl.moco import MoCo
from representation.ssl.registry import SSL_METHODS, make_ssl_method, ssl_method_names
from representation.ssl.simclr import SimCLR
from representation.ssl.simsiam import SimSiam

__all__ = ["SSLMethod", "SimCLR", "MoCo", "BYOL", "SimSiam", "SSL_METHODS", "make_ssl_method",
           "ssl_method_names", "contrastive_loss", "triplet_loss", "lifted_structured_loss", "n_pair_loss",
           "info_nce", "nt_xent", "normalized_mse", "negative_cosine"]

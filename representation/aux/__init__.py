"""Auxiliary representation objectives that shape any agent's encoder: CURL, DeepMDP, DBC.

``make_aux("curl", encoder, observation_space, action_space, tau=0.05)`` builds one; its
``loss(batch, encoder)`` is added to the agent's loss (or stepped on its own optimiser) and
``after_update(encoder)`` runs after every optimiser step. ``agents.auxiliary`` is the glue.
"""
from representation.aux.base import (AuxObjective, action_features, aux_class, aux_names, make_aux,
                                     register_aux)
from representation.aux.curl import CURL
from representation.aux.dbc import DBC, gaussian_w2
from representation.aux.deepmdp import DeepMDP

__all__ = ["AuxObjective", "CURL", "DeepMDP", "DBC", "make_aux", "aux_names", "aux_class", "register_aux",
           "action_features", "gaussian_w2"]

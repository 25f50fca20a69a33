"""Graph neural networks: batched graphs, message passing (MPNN, GCN, master node), node- /
edge- / graph-level models, padded-graph observations and the ``"gnn"`` agent encoder.

``fit(GNN(...), graphs, targets)`` trains a model on its own; ``model.export_encoder(path)``
then hands its body to agents on padded-graph observations (``--encoder-checkpoint path``)."""
from representation.gnn.fit import accuracy, fit, graph_minibatches
from representation.gnn.graph_batch import Graph, GraphBatch, collate, graph_from_instance
from representation.gnn.layers import GCNConv, MasterNode, MessagePassing, global_pool, scatter
from representation.gnn.body import GNNBody
from representation.gnn.model import GCN, GNN, load_gnn
from representation.gnn.padded import PaddedGraph, padded_to_graph_batch
from representation.gnn.encoder import GNNEncoder  # last: it imports representation.encoders

__all__ = ["Graph", "GraphBatch", "collate", "graph_from_instance", "scatter", "MessagePassing", "GCNConv",
           "MasterNode", "global_pool", "GNNBody", "GNN", "GCN", "load_gnn", "fit", "accuracy",
           "graph_minibatches", "PaddedGraph", "padded_to_graph_batch", "GNNEncoder"]

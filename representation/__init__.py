"""State representations: encoders for agents, auxiliary RL objectives and sibling modules
(self-supervised learning, generative models, graph networks). Depends on torch only."""

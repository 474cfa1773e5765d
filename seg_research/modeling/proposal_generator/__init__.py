"""Proposal generators (the RPN) and their registries."""
from .build import PROPOSAL_GENERATOR_REGISTRY, build_proposal_generator
from .rpn import RPN, RPN_HEAD_REGISTRY, StandardRPNHead, build_rpn_head, find_top_rpn_proposals

__all__ = [
    "PROPOSAL_GENERATOR_REGISTRY", "build_proposal_generator",
    "RPN_HEAD_REGISTRY", "build_rpn_head", "StandardRPNHead", "RPN", "find_top_rpn_proposals",
]

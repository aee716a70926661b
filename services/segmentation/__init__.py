"""Segmentation: RFM, ABC/Pareto, the tier pyramid, loyalty stage and churn risk; re-tiers on events."""

"""Fraud-detection study on the ULB credit-card data: MLP, ADASYN, leakage-safe protocols."""

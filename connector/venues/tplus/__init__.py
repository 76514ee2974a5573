"""The T+ venue: market data (MDS) and order-management (OMS) streams."""

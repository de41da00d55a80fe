"""omnirelay: an omnichannel messaging gateway (Messenger with SMS failover)."""

__version__ = "0.1.0"

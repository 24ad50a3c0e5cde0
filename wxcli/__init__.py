"""wxcli — run a bank's WeChat Official Account and its micro-site from one git repository."""

__version__ = "0.1.0"

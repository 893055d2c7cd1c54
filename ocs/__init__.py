"""OCS (Open Cloud System): an elastic IaaS that speaks the EC2 and GCE APIs."""

__version__ = "0.1.0"

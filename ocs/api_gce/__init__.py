"""The Compute Engine v1 front end (see :mod:`ocs.api_gce.app`)."""

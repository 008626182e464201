"""The error both wire codecs (``codec``: plain data; ``richwire``: numpy and pandas values) raise for malformed
data from the other side. A module of its own, so that neither codec imports the other to name it."""


class WireError(ValueError):
    """Malformed data from the other side."""

"""The one error of installing packages."""


class InstallError(RuntimeError):
    """pip could not install, or no suitable Python was found: the message says which
    package and why (pip's last error lines)."""

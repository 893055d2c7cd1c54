"""Real QEMU guests through libvirtd (skipped unless libvirtd answers; CI requires it)."""

"""Small helpers every subsystem uses: the device and precision (``device``)
and the user cache folder (``paths``). Nothing here imports the rest of
sktransfer."""

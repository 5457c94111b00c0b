"""Small helpers every subsystem uses: the device and precision (``device``),
the user cache folder (``paths``), the one write-then-rename (``files``) and
shared docstring text (``docs``). Nothing here imports the rest of sktransfer."""

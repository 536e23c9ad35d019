"""Delta transfer: rsync's algorithm with the hot loops in numpy.

The DESTINATION describes its basis file with a signature (`signature`), the SOURCE turns its
file into COPY and LITERAL operations against that signature (`match`), and the DESTINATION
rebuilds the file from its basis and the literals (`apply`). `weak` holds the rolling checksum,
`reference` a slow plain-Python oracle for the tests, and `files` the drivers that read files.
The algorithm modules (weak, signature, match) take buffers and do no I/O."""

import os

# numpy's OpenBLAS starts a thread per core when numpy is imported, and each spins for ~0.1 s
# of CPU before it sleeps (measured: 0.21 s of CPU for `import numpy` against 0.11 s with one
# thread). The delta uses no BLAS (integer arrays only), and on a small machine that spin
# competes with the transfer. Set before this package's modules import numpy; a user's own
# setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

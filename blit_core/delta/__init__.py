"""Delta transfer: rsync's algorithm with the hot loops in numpy.

The DESTINATION describes its basis file with a signature (`signature`), the SOURCE turns its
file into COPY and LITERAL operations against that signature (`match`), and the DESTINATION
rebuilds the file from its basis and the literals (`apply`). `weak` holds the rolling checksum,
`reference` a slow plain-Python oracle for the tests, and `files` the drivers that read files.
The algorithm modules (weak, signature, match) take buffers and do no I/O."""

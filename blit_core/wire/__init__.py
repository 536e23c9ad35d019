"""The wire formats of blit, pure and sans-I/O: byte layouts, encoders and incremental decoders
that turn bytes into events and events into bytes. Nothing here opens, reads or writes a socket
or a file; the caller owns all I/O, so every format can be tested with plain bytes."""

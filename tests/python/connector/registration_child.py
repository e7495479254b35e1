"""A worker in its own process for the registration socket's tests (run as a script; it does
not import flexkv): registers an anonymous buffer of its own as rank ``argv[2]`` of
``argv[3]``, prints the server's answer and keeps the connection open until stdin closes.
With ``orphan`` it exits once answered, leaving a forked child that holds the connection."""

import ctypes
import json
import mmap
import os
import socket
import sys

path, rank, world, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
buf = mmap.mmap(-1, 1 << 20)
base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
msg = {"protocol": 1, "rank": rank, "world_size": world, "pid": os.getpid(), "num_blocks": 8, "memory": "host",
       "layers": [[base, 256, 128, 128, 2]]}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall((json.dumps(msg) + "\n").encode())
reply = s.makefile("rb").readline()
sys.stdout.write(reply.decode() if reply else "\n")
sys.stdout.flush()
if mode == "orphan" and os.fork() != 0:
    os._exit(0)
sys.stdin.read()

"""A real llama.cpp HTTP server (xllamacpp) for the tests, run as a child process.

    python _llm_server.py MODEL.gguf PORT API_KEY N_CTX

Prints "ready <address>" once the model is loaded; serves until its stdin closes.
"""

from __future__ import annotations

import sys

import xllamacpp


def main() -> None:
    model, port, key, n_ctx = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    p = xllamacpp.CommonParams()
    p.model.path = model
    p.n_ctx = n_ctx
    p.port = port
    p.hostnames = ["127.0.0.1"]
    p.api_keys = [key]
    p.n_parallel = 1
    # one thread: a 135M model gains nothing from two, and loses a lot when cores are shared
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 1
    p.verbosity = -1
    server = xllamacpp.Server(p)
    print(f"ready {server.listening_address}", flush=True)
    sys.stdin.read()  # the test closes our stdin to stop us
    del server


if __name__ == "__main__":
    main()

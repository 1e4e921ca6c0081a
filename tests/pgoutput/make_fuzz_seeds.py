#!/usr/bin/env python3
"""Writes the seed corpus of pgoutput_decoder_fuzz into fuzz_corpus/.

Seeds are cut from the captured fixtures (fixtures/*.hex) and framed the way
decoder_fuzz.cc reads its input: one byte whose bit 0 selects the protocol
version, then frames of Int16 big-endian length + message bytes. Messages
longer than MAX_MESSAGE bytes are left out so the seeds stay small. Re-run
after re-capturing the fixtures; the output is deterministic.
"""
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
MAX_MESSAGE = 1024


def load(name):
    out = []
    for line in (HERE / "fixtures" / name).read_text().splitlines():
        if line and not line.startswith("#"):
            out.append(bytes.fromhex(line.split()[2]))
    return out


def frame(version, messages):
    data = bytes([1 if version == 2 else 0])
    for m in messages:
        data += struct.pack(">H", len(m)) + m
    return data


def transactions(messages):
    """Splits a non-streamed message list at Commit ('C') boundaries."""
    txn = []
    for m in messages:
        txn.append(m)
        if m[:1] in (b"C", b"M") and (m[:1] == b"C" or len(txn) == 1):
            yield txn
            txn = []
    if txn:
        yield txn


def main():
    corpus = HERE / "fuzz_corpus"
    corpus.mkdir(exist_ok=True)
    for old in corpus.glob("seed_*"):
        old.unlink()
    seeds = {}
    # v1: each transaction of the text, binary and origin captures.
    for name in ("v1_text.hex", "v1_binary.hex", "v1_origin.hex"):
        for i, txn in enumerate(transactions(load(name))):
            txn = [m for m in txn if len(m) <= MAX_MESSAGE]
            seeds[f"seed_{name[:-4]}_{i:02d}"] = frame(1, txn)
    # v2: the start and the end of each streamed block, plus the stream
    # commit/abort messages, keeping a few data messages per block.
    streamed = [m for m in load("v2_streamed.hex") if len(m) <= MAX_MESSAGE]
    block, blocks = [], []
    for m in streamed:
        block.append(m)
        if m[:1] in (b"E", b"c", b"A", b"C"):
            blocks.append(block)
            block = []
    for i, b in enumerate(blocks):
        short = b[:6] + b[-2:] if len(b) > 8 else b
        seeds[f"seed_v2_streamed_{i:02d}"] = frame(2, short)
    # Every distinct message type alone, in the version that sends it.
    seen = set()
    for version, name in ((1, "v1_text.hex"), (1, "v1_origin.hex"), (2, "v2_streamed.hex")):
        for m in load(name):
            if m[:1] not in seen and len(m) <= MAX_MESSAGE:
                seen.add(m[:1])
                seeds[f"seed_single_{m[:1].hex()}"] = frame(version, [m])
    for file_name, data in sorted(seeds.items()):
        (corpus / file_name).write_bytes(data)
    print(f"wrote {len(seeds)} seeds to {corpus}")


if __name__ == "__main__":
    main()

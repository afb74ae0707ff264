#!/usr/bin/env python3
"""Writes cifar_batch_protocol{2,5}.pkl: a three-image CIFAR-10 python batch
pickled by real numpy (a dict with byte-string keys, as the CIFAR-10 python archive holds), in
the protocol a Python 3 user re-pickling CIFAR would most likely produce (2 and 5), for
CifarImportTests.RealNumpyPicklesAreRead. Run with /usr/bin/python3 (numpy 1.24)."""
import os
import pickle

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
out = here
i = np.arange(3 * 3072)
batch = {
    b"batch_label": b"fixture batch 1 of 1",
    b"labels": [3, 8, 0],
    b"data": ((i * 7 + i // 3072) % 256).astype(np.uint8).reshape(3, 3072),
    b"filenames": [b"a.png", b"b.png", b"c.png"],
}
for protocol in (2, 5):
    with open(os.path.join(out, f"cifar_batch_protocol{protocol}.pkl"), "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
print("wrote", out)

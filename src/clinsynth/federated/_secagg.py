"""Secure aggregation with distributed noise: the server learns the sum of the sites' noisy
vectors and nothing else (Bonawitz et al., CCS 2017, without the recovery of dropped sites).

Each site makes an X25519 key pair for the federation and sends the public key; the server
relays every participant's public key. Two sites ``i < j`` agree a secret by X25519 without
talking to each other (each combines its private key with the other's public key; the server,
which holds only public keys, cannot), derive one AES key per step from it (HKDF-SHA256) and
expand it into a mask (AES-CTR keystream). Site ``i`` adds the mask, site ``j`` subtracts it:
every pair's masks cancel in the sum, and each masked vector alone is uniformly distributed.
Vectors are fixed point (:data:`FRACTION_BITS` fractional bits) in the integers modulo
``2**64``, where the masking is exact.

**Distributed noise.** The sum must carry the noise one central mechanism would add: for every
participant ``k`` the Gaussian noise ``σ_k`` its own budget needs (:func:`sum_sigma`: the
largest of them, ``σ``). Each of the ``K`` sites adds ``N(0, σ² / K)``, so the sum holds
``N(0, σ²)``: a central mechanism's noise instead of ``K`` sites' full noises.

**Trust model.** Each site's epsilon then holds against a server that follows the protocol
(honest-but-curious: it relays the keys as received and announces the true participants) and
when no site colludes with the server (the other ``K - 1`` sites together know their own noise
shares and could remove them from the sum, leaving ``σ² / K``). A site that does not accept
this adds its full noise ``σ_k`` anyway (``Site(local_noise=True)``; its epsilon then holds
without the assumption), or the federation runs without secure aggregation
(``Plan(secure_aggregation=False)``). There is no recovery of a site that drops after
masking: the masks of its pairs do not cancel, so the server refuses the round (nothing is
unmasked or used).
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from clinsynth.errors import FederationError, MissingDependencyError

#: Under which assumption a site's epsilon holds when it adds only its share of the noise.
ASSUMPTION = (
    "secure aggregation: this site's epsilon for its marginals holds if the server follows the "
    "protocol (honest-but-curious: it relays the sites' keys unchanged and names the true "
    "participants) and no other site colludes with the server; its statistics (ranges, "
    "histograms) carry its own full noise and need no assumption"
)
#: Fractional bits of the fixed-point encoding (a resolution of 2**-16, far below the noise).
FRACTION_BITS = 16
#: The largest magnitude a masked value may have (the sum of every site's must stay in int64).
LIMIT = float(2**40)


def _crypto() -> Any:
    """The ``cryptography`` package (installed with Flower, the ``federated`` extra)."""
    try:
        import cryptography
    except ImportError:
        raise MissingDependencyError(
            "Secure aggregation needs the optional package 'cryptography' (installed with "
            "Flower), which is not installed. Install it with: pip install clinsynth[federated] "
            "(or run the federation with secure_aggregation=False)."
        ) from None
    return cryptography


class SiteKey:
    """A site's X25519 key pair for one federation (the private key never leaves the site)."""

    def __init__(self) -> None:
        _crypto()
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        self._private = X25519PrivateKey.generate()
        raw = self._private.public_key().public_bytes_raw()
        self.public = base64.b64encode(raw).decode("ascii")

    def mask(self, values: np.ndarray, keys: list[str], step: str) -> np.ndarray:
        """``values`` in fixed point plus this site's pairwise masks with every other key of
        ``keys`` (the participants, in the server's order): ``+`` towards later ones, ``-``
        towards earlier ones."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        if self.public not in keys:
            raise FederationError(
                "The server's list of participants does not hold this site's key: the site "
                "does not take part in a round it cannot mask. Check the server's log."
            )
        out = encode(values)
        mine = keys.index(self.public)
        for position, key in enumerate(keys):
            if position == mine:
                continue
            try:
                peer = X25519PublicKey.from_public_bytes(base64.b64decode(key, validate=True))
            except ValueError:
                raise FederationError(
                    f"The server relayed a public key that is not an X25519 key: {key[:16]!r}."
                ) from None
            secret = self._private.exchange(peer)
            pair = "".join(sorted((self.public, key)))
            stream = _keystream(secret, f"{step}|{pair}", out.size)
            out = out + stream if position > mine else out - stream  # uint64: modulo 2**64
        return out


def _keystream(secret: bytes, info: str, n: int) -> np.ndarray:
    """``n`` pseudo-random uint64 from a shared secret: HKDF-SHA256 for the step's key, then
    AES-256-CTR."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    info_bytes = b"clinsynth secure aggregation|" + info.encode("ascii")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info_bytes).derive(secret)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    data = encryptor.update(bytes(8 * n)) + encryptor.finalize()
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


def encode(values: np.ndarray) -> np.ndarray:
    """Real values as fixed point in the integers modulo ``2**64`` (two's complement)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)) or (values.size and np.abs(values).max() >= LIMIT):
        raise FederationError(
            f"A value to aggregate is not finite or beyond {LIMIT:g}: it cannot be encoded."
        )
    return np.round(values * 2.0**FRACTION_BITS).astype(np.int64).view(np.uint64)


def unmask_sum(vectors: list[np.ndarray], size: int) -> np.ndarray:
    """The sum of the sites' masked vectors, decoded: the masks cancel when every participant's
    vector is there (the caller checks that)."""
    total = np.zeros(size, dtype=np.uint64)
    for v in vectors:
        v = np.asarray(v)
        if v.dtype != np.uint64 or v.shape != (size,):
            raise FederationError(
                f"A site sent a masked vector of {v.dtype} {v.shape}; uint64 ({size},) was "
                "expected: the server and the site run different clinsynth versions?"
            )
        total = total + v  # modulo 2**64
    return total.view(np.int64).astype(np.float64) / 2.0**FRACTION_BITS


def sum_sigma(sigmas: list[float]) -> float:
    """The noise σ the sum must carry: the largest that any participant's budget needs (each
    site's guarantee then holds, the most demanding one exactly)."""
    return float(max(sigmas))


def share(sigma: float, k: int) -> float:
    """The noise σ each of ``k`` sites adds so that their sum carries ``N(0, sigma²)``."""
    return float(sigma) / math.sqrt(k)

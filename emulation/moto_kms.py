"""What moto's KMS lacks that the emulation needs: RSA decryption.

KMS decrypts a ciphertext that the public half of an RSA key (ENCRYPT_DECRYPT) sealed anywhere,
given its EncryptionAlgorithm (RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256); a self-managed Airflow's
export seals its data keys so. moto generates the key pair and serves GetPublicKey, but its Decrypt
knows only its own symmetric blobs and answers InvalidCiphertextException. Here Decrypt with an RSA
algorithm opens the ciphertext with the key's private half, as KMS does, and refuses what KMS
refuses: a symmetric key or one not for encryption (InvalidKeyUsageException), a ciphertext the
key did not seal or sealed with the other algorithm (InvalidCiphertextException).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from moto.kms.exceptions import InvalidCiphertextException, InvalidKeyUsageException, ValidationException
from moto.kms.responses import KmsResponse

_HASHES = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}


def _rsa_aware(decrypt: Callable[[Any], str]) -> Callable[[Any], str]:
    def rsa_decrypt(self: Any) -> str:
        algorithm = self._get_param("EncryptionAlgorithm") or "SYMMETRIC_DEFAULT"
        if algorithm not in _HASHES:
            return decrypt(self)
        key_id = self._get_param("KeyId")
        if not key_id:
            raise ValidationException("KeyId is required to decrypt with an asymmetric key")
        self._validate_key_id(key_id)
        key = self.kms_backend.keys[self.kms_backend.get_key_id(key_id)]
        if not key.key_spec.startswith("RSA_") or key.key_usage != "ENCRYPT_DECRYPT":
            raise InvalidKeyUsageException()
        digest = _HASHES[algorithm]()
        oaep = padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)
        try:
            plaintext = key.private_key.private_key.decrypt(self._get_param("CiphertextBlob"), oaep)
        except ValueError:
            raise InvalidCiphertextException() from None
        return json.dumps(
            {
                "Plaintext": base64.b64encode(plaintext).decode("ascii"),
                "KeyId": key.arn,
                "EncryptionAlgorithm": algorithm,
            }
        )

    return rsa_decrypt


@contextlib.contextmanager
def rsa_decryption() -> Iterator[None]:
    with mock.patch.object(KmsResponse, "decrypt", _rsa_aware(KmsResponse.decrypt)):
        yield

"""The emulation's KMS decrypts what the public half of an RSA key sealed, as KMS does, and refuses
what KMS refuses (emulation/moto_kms.py)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key
from moto import mock_aws
from mypy_boto3_kms import KMSClient

from emulation.moto_kms import rsa_decryption


@pytest.fixture
def kms() -> Iterator[KMSClient]:
    with mock_aws(), rsa_decryption():
        yield boto3.client("kms", region_name="us-east-1")


def sealed(kms: KMSClient, key_id: str, message: bytes, digest: type[hashes.HashAlgorithm]) -> bytes:
    public_key = load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    oaep = padding.OAEP(mgf=padding.MGF1(digest()), algorithm=digest(), label=None)
    return public_key.encrypt(message, oaep)  # type: ignore[union-attr]


def rsa_key(kms: KMSClient, usage: str = "ENCRYPT_DECRYPT") -> str:
    return kms.create_key(KeySpec="RSA_3072", KeyUsage=usage)["KeyMetadata"]["Arn"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("algorithm", "digest"), [("RSAES_OAEP_SHA_256", hashes.SHA256), ("RSAES_OAEP_SHA_1", hashes.SHA1)]
)
def test_what_the_public_key_sealed_decrypts_with_its_algorithm(
    kms: KMSClient, algorithm: str, digest: type[hashes.HashAlgorithm]
) -> None:
    key_id = rsa_key(kms)

    answer = kms.decrypt(
        KeyId=key_id,
        CiphertextBlob=sealed(kms, key_id, b"data key", digest),
        EncryptionAlgorithm=algorithm,  # type: ignore[arg-type]
    )

    assert answer["Plaintext"] == b"data key"
    assert answer["KeyId"] == key_id
    assert answer["EncryptionAlgorithm"] == algorithm


def test_the_other_algorithm_or_another_keys_ciphertext_does_not_decrypt(kms: KMSClient) -> None:
    key_id, other = rsa_key(kms), rsa_key(kms)
    ciphertext = sealed(kms, key_id, b"data key", hashes.SHA256)

    for attempt in (
        {"KeyId": key_id, "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"},
        {"KeyId": other, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
    ):
        with pytest.raises(ClientError, match="InvalidCiphertextException"):
            kms.decrypt(CiphertextBlob=ciphertext, **attempt)  # type: ignore[arg-type]


def test_a_symmetric_key_or_a_signing_key_refuses_an_rsa_algorithm(kms: KMSClient) -> None:
    symmetric = kms.create_key()["KeyMetadata"]["Arn"]
    signing = rsa_key(kms, "SIGN_VERIFY")

    for key_id in (symmetric, signing):
        with pytest.raises(ClientError, match="InvalidKeyUsageException"):
            kms.decrypt(KeyId=key_id, CiphertextBlob=b"x" * 384, EncryptionAlgorithm="RSAES_OAEP_SHA_256")


def test_symmetric_decryption_is_moto_s_own(kms: KMSClient) -> None:
    key_id = kms.create_key()["KeyMetadata"]["Arn"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"plain", EncryptionContext={"m": "1"})["CiphertextBlob"]

    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"m": "1"})["Plaintext"] == b"plain"

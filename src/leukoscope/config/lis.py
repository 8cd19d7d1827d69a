"""`[lis]`: the laboratory information system: where orders come in, where results go.

Described for users in docs/lis.md and docs/configuration.md.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from leukoscope.config.base import Section

_NAME = r"^[A-Za-z0-9 ._-]{0,64}$"  # MSH-3..6: no HL7 delimiters, no control characters


class LisConfig(Section):
    """Laboratory system: orders in (MLLP listener, files), results out (MLLP, FHIR)."""

    host: str = Field(default="", max_length=253, description="MLLP results receiver; empty = off")
    port: int = Field(default=2575, ge=1, le=65535, description="MLLP results receiver's port")
    tls_ca: Path | None = Field(
        default=None, description="CA file: results go over TLS, the receiver's certificate checked"
    )
    tls_cert: Path | None = Field(default=None, description="our client certificate (mutual TLS)")
    tls_key: Path | None = Field(default=None, description="the client certificate's key")
    ack_timeout_s: float = Field(
        default=30.0, gt=0.0, le=600.0, description="wait this long for an ACK, s"
    )
    backoff_s: float = Field(
        default=2.0, gt=0.0, le=3600.0, description="first wait after a failed try, s (doubles)"
    )
    backoff_max_s: float = Field(
        default=300.0, gt=0.0, le=86400.0, description="longest wait between tries, s"
    )
    max_attempts: int = Field(
        default=10, ge=1, le=1000, description="tries before a message is marked failed"
    )
    poll_s: float = Field(
        default=2.0,
        gt=0.0,
        le=3600.0,
        description="lis send --follow looks for releases this often",
    )
    listen_host: str = Field(
        default="127.0.0.1", max_length=253, description="lis listen: address orders arrive on"
    )
    listen_port: int = Field(default=2576, ge=1, le=65535, description="lis listen: port")
    listen_tls_cert: Path | None = Field(
        default=None, description="lis listen: server certificate (TLS); empty = plain MLLP"
    )
    listen_tls_key: Path | None = Field(default=None, description="lis listen: its key")
    fhir_url: str = Field(
        default="", max_length=2000, description="FHIR server base URL: Bundles are POSTed here"
    )
    fhir_folder: Path | None = Field(
        default=None, description="folder FHIR Bundles are written to (instead of a server)"
    )
    sending_application: str = Field(default="LEUKOSCOPE", pattern=_NAME, description="MSH-3")
    sending_facility: str = Field(default="", pattern=_NAME, description="MSH-4")
    receiving_application: str = Field(default="", pattern=_NAME, description="MSH-5")
    receiving_facility: str = Field(default="", pattern=_NAME, description="MSH-6")

    @field_validator("fhir_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> LisConfig:
        if self.fhir_url and self.fhir_folder is not None:
            raise ValueError("set fhir_url or fhir_folder, not both")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if (self.listen_tls_cert is None) != (self.listen_tls_key is None):
            raise ValueError("listen_tls_cert and listen_tls_key go together")
        if self.backoff_s > self.backoff_max_s:
            raise ValueError(f"backoff_s {self.backoff_s} > backoff_max_s {self.backoff_max_s}")
        return self

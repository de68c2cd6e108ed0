"""Reading one AWS Secrets Manager secret, with fdp's error classes.

The vendor key and the warehouse both come from secrets in a deployment; each caller parses the
text its own way, and every failure here names the secret, never its value.
"""

from __future__ import annotations

from fdp.config import Settings
from fdp.errors import ConfigError, MissingDependencyError, TransientError

_TRANSIENT = frozenset({"ThrottlingException", "InternalServiceError"})


def read_secret(settings: Settings, secret_id: str) -> str:
    """The ``SecretString`` of ``secret_id`` (a name or an ARN), stripped; the endpoint and the
    region come from ``settings`` (``FDP_SECRETS_ENDPOINT_URL``, ``FDP_AWS_REGION``)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
    except ImportError:
        raise MissingDependencyError("boto3", "aws") from None
    try:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=settings.secrets_endpoint_url,
            region_name=settings.aws_region,
        )
        text = client.get_secret_value(SecretId=secret_id).get("SecretString") or ""
    except NoRegionError:
        raise ConfigError(f"reading secret {secret_id!r}: set FDP_AWS_REGION") from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        if code in _TRANSIENT:
            raise TransientError(f"Secrets Manager {code} reading secret {secret_id!r}") from None
        raise ConfigError(
            f"cannot read secret {secret_id!r} from Secrets Manager: {code}"
        ) from None
    except BotoCoreError as exc:
        raise TransientError(
            f"Secrets Manager unreachable reading secret {secret_id!r}: {type(exc).__name__}"
        ) from None
    return str(text).strip()

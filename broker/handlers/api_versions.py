"""ApiVersions (key 18), versions 0-3.

Behavior:
- Advertises exactly the version ranges of the handler modules in broker/handlers.
- v3 requests are flexible, yet the response header stays v0 (kio's schema knows).
- A version above 3 is answered with UNSUPPORTED_VERSION in the v0 form, still carrying
  our ranges, so the client retries with a version we speak (librdkafka, kafka-python).
- v3 checks client_software_name/version as Kafka does (INVALID_REQUEST otherwise).
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from kio.schema.api_versions.v0.response import ApiVersion as ApiVersionV0
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0

from broker.handlers import RequestContext
from broker.protocol import (
    INVALID_REQUEST,
    UNSUPPORTED_VERSION,
    encode_response,
    error_code,
    make,
    nested,
    response_schema,
)

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 3

_SOFTWARE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")
_ZERO = datetime.timedelta(0)


def _ranges(broker: Any, cls: type) -> tuple[Any, ...]:
    return tuple(
        cls(api_key=k, min_version=lo, max_version=hi) for k, lo, hi in broker.api_version_ranges()
    )


def unsupported_version_response(broker: Any, correlation_id: int) -> bytes:
    response = ApiVersionsResponseV0(
        error_code=error_code(UNSUPPORTED_VERSION), api_keys=_ranges(broker, ApiVersionV0)
    )
    return encode_response(response, correlation_id)


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_schema(API_KEY, ctx.api_version)
    err = 0
    if ctx.api_version >= 3:
        name = request.client_software_name
        version = request.client_software_version
        if not (_SOFTWARE.match(name) and _SOFTWARE.match(version)):
            err = INVALID_REQUEST
    return make(
        cls,
        error_code=error_code(err),
        api_keys=_ranges(ctx.broker, nested(cls, "ApiVersion")),
        throttle_time=_ZERO,
    )

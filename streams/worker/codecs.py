"""orjson for values and UTF-8 for keys, registered with Faust.

Faust's default pickle codec runs code from the wire, so it is never used here.
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs


class OrjsonCodec(codecs.Codec):
    def _dumps(self, value: Any) -> bytes:
        return orjson.dumps(value)

    def _loads(self, data: bytes) -> Any:
        return orjson.loads(data)


class Utf8Codec(codecs.Codec):
    def _dumps(self, value: Any) -> bytes:
        return value.encode() if isinstance(value, str) else bytes(value)

    def _loads(self, data: bytes) -> Any:
        return data.decode()


def register_codecs() -> None:
    codecs.register("orjson", OrjsonCodec())
    codecs.register("utf8", Utf8Codec())

"""Serializers for aiocache caches."""

from .codecs import Codec as Codec
from .compression import CompressionSerializer as CompressionSerializer

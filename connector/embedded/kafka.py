"""An in-process Kafka-protocol cluster built on librdkafka's mock cluster.

No Kafka broker can be installed where this project is developed and tested, but the
librdkafka shared library bundled in the confluent-kafka wheel contains a mock cluster
that speaks the Kafka wire protocol on real 127.0.0.1 ports. It is not exposed by the
Python binding, so it is reached here through ctypes. Any Kafka client, in any process,
can connect to :attr:`MockCluster.bootstrap_servers`.

Limits worth knowing (librdkafka 2.x): the Admin API's topic creation is not
implemented (create topics with :meth:`MockCluster.create_topic`), each partition keeps
only about 5 MiB of recent data, and transactions are not emulated.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Sequence
from types import TracebackType

import confluent_kafka

__all__ = ["EmbeddedKafkaError", "MockCluster"]

_RD_KAFKA_PRODUCER = 0
_ERRSTR_SIZE = 512
_CONTROLLER_ID = 1


class EmbeddedKafkaError(RuntimeError):
    """A mock-cluster operation failed; the message carries librdkafka's error name."""


def _find_librdkafka() -> str:
    """Locate the librdkafka build that confluent-kafka itself loaded.

    Using the very same file matters: the dynamic loader then hands back the library
    already mapped by ``confluent_kafka.cimpl`` instead of a second copy with its own
    global state.
    """
    package_dir = os.path.dirname(os.path.abspath(confluent_kafka.__file__))
    libs_dir = os.path.join(os.path.dirname(package_dir), "confluent_kafka.libs")
    candidates = sorted(glob.glob(os.path.join(libs_dir, "librdkafka*.so*")))
    if not candidates:
        raise EmbeddedKafkaError(
            f"librdkafka shared library not found in {libs_dir}; "
            "the confluent-kafka wheel is expected to bundle it"
        )
    return candidates[0]


def _load_library() -> ctypes.CDLL:
    """Open librdkafka and declare the prototypes used, so ctypes passes correct widths."""
    lib = ctypes.CDLL(_find_librdkafka())
    vp, cp, i32, i16 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int16
    err = ctypes.c_int  # rd_kafka_resp_err_t is a C enum
    prototypes: dict[str, tuple[object, list[object]]] = {
        "rd_kafka_conf_new": (vp, []),
        "rd_kafka_conf_set": (ctypes.c_int, [vp, cp, cp, cp, ctypes.c_size_t]),
        "rd_kafka_conf_destroy": (None, [vp]),
        "rd_kafka_new": (vp, [ctypes.c_int, vp, cp, ctypes.c_size_t]),
        "rd_kafka_destroy": (None, [vp]),
        "rd_kafka_err2name": (cp, [err]),
        "rd_kafka_mock_cluster_new": (vp, [vp, ctypes.c_int]),
        "rd_kafka_mock_cluster_destroy": (None, [vp]),
        "rd_kafka_mock_cluster_bootstraps": (cp, [vp]),
        "rd_kafka_mock_topic_create": (err, [vp, cp, ctypes.c_int, ctypes.c_int]),
        "rd_kafka_mock_set_controller_id": (None, [vp, i32]),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": (None, [vp, i32]),
        "rd_kafka_mock_broker_set_down": (err, [vp, i32]),
        "rd_kafka_mock_broker_set_up": (err, [vp, i32]),
        "rd_kafka_mock_broker_set_rtt": (err, [vp, i32, ctypes.c_int]),
        "rd_kafka_mock_push_request_errors_array": (
            None,
            [vp, i16, ctypes.c_size_t, ctypes.POINTER(err)],
        ),
        "rd_kafka_mock_clear_request_errors": (None, [vp, i16]),
    }
    for name, (restype, argtypes) in prototypes.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


class MockCluster:
    """A Kafka cluster of ``brokers`` brokers (ids 1..N) listening on 127.0.0.1.

    The cluster lives inside an otherwise idle librdkafka producer handle created here;
    both are kept referenced for the cluster's lifetime and destroyed in the required
    order (cluster first) by :meth:`close`.
    """

    def __init__(self, brokers: int = 1) -> None:
        if brokers < 1:
            raise ValueError(f"brokers must be at least 1, got {brokers}")
        self._lib = _load_library()
        self._lock = threading.Lock()
        self._rk: int | None = None
        self._mc: int | None = None
        self._rk = self._new_handle()
        mc = self._lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not mc:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None
            raise EmbeddedKafkaError("rd_kafka_mock_cluster_new failed")
        self._mc = mc
        self._brokers = brokers
        self._bootstrap_servers: str = self._lib.rd_kafka_mock_cluster_bootstraps(mc).decode()
        # Describe/metadata calls need a controller, and a classic consumer group would
        # otherwise wait 3 s before its first rebalance.
        self._lib.rd_kafka_mock_set_controller_id(mc, _CONTROLLER_ID)
        self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(mc, 0)

    def _new_handle(self) -> int:
        """Create the rd_kafka_t that owns the cluster's threads."""
        errstr = ctypes.create_string_buffer(_ERRSTR_SIZE)
        conf = self._lib.rd_kafka_conf_new()
        # The owning handle never talks to anyone; keep its own logging to errors so an
        # unused producer does not print warnings about missing bootstrap servers.
        if self._lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, _ERRSTR_SIZE) != 0:
            self._lib.rd_kafka_conf_destroy(conf)
            raise EmbeddedKafkaError(f"rd_kafka_conf_set(log_level): {errstr.value.decode()}")
        rk = self._lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, errstr, _ERRSTR_SIZE)
        if not rk:
            # rd_kafka_new takes ownership of conf only on success.
            self._lib.rd_kafka_conf_destroy(conf)
            raise EmbeddedKafkaError(f"rd_kafka_new failed: {errstr.value.decode()}")
        return int(rk)

    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated ``127.0.0.1:port`` list, one entry per broker."""
        return self._bootstrap_servers

    def _cluster(self) -> int:
        if self._mc is None:
            raise EmbeddedKafkaError("mock cluster is closed")
        return self._mc

    def _check(self, err: int, operation: str) -> None:
        if err != 0:
            name = self._lib.rd_kafka_err2name(err).decode()
            raise EmbeddedKafkaError(f"{operation} failed: {name}")

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 1) -> None:
        """Create a topic; the mock does not implement the Admin API's CreateTopics.

        Arguments are validated here because the mock accepts zero partitions and a
        replication factor above the broker count (which real Kafka rejects) and aborts
        the whole process on a negative replication factor.
        """
        if not name:
            raise EmbeddedKafkaError("create_topic failed: INVALID_TOPIC_EXCEPTION (empty name)")
        if partitions < 1:
            raise EmbeddedKafkaError(
                f"create_topic({name!r}) failed: INVALID_PARTITIONS ({partitions})"
            )
        if not 1 <= replication_factor <= self._brokers:
            raise EmbeddedKafkaError(
                f"create_topic({name!r}) failed: INVALID_REPLICATION_FACTOR "
                f"({replication_factor} with {self._brokers} broker(s))"
            )
        with self._lock:
            err = self._lib.rd_kafka_mock_topic_create(
                self._cluster(), name.encode(), partitions, replication_factor
            )
        self._check(err, f"create_topic({name!r})")

    def set_broker_down(self, broker_id: int = -1) -> None:
        """Close the broker's connections and refuse new ones (``-1`` = all brokers).

        The listening port is kept, so clients reconnect to the same address later.
        """
        with self._lock:
            err = self._lib.rd_kafka_mock_broker_set_down(self._cluster(), broker_id)
        self._check(err, f"set_broker_down({broker_id})")

    def set_broker_up(self, broker_id: int = -1) -> None:
        """Bring a broker (``-1`` = all brokers) back after :meth:`set_broker_down`."""
        with self._lock:
            err = self._lib.rd_kafka_mock_broker_set_up(self._cluster(), broker_id)
        self._check(err, f"set_broker_up({broker_id})")

    def set_broker_rtt(self, broker_id: int, rtt_ms: int) -> None:
        """Delay every response from a broker by ``rtt_ms`` to simulate a slow network."""
        with self._lock:
            err = self._lib.rd_kafka_mock_broker_set_rtt(self._cluster(), broker_id, rtt_ms)
        self._check(err, f"set_broker_rtt({broker_id}, {rtt_ms})")

    def push_request_errors(self, api_key: int, errors: Sequence[int]) -> None:
        """Make the next ``len(errors)`` requests of ``api_key`` fail with these codes.

        Error codes are those of ``confluent_kafka.KafkaError`` (e.g. 19 for
        NOT_ENOUGH_REPLICAS); API keys are Kafka's (0 Produce, 1 Fetch, 3 Metadata, ...).
        """
        array = (ctypes.c_int * len(errors))(*errors)
        with self._lock:
            self._lib.rd_kafka_mock_push_request_errors_array(
                self._cluster(), api_key, len(errors), array
            )

    def clear_request_errors(self, api_key: int) -> None:
        """Drop any errors still queued for ``api_key`` by :meth:`push_request_errors`."""
        with self._lock:
            self._lib.rd_kafka_mock_clear_request_errors(self._cluster(), api_key)

    def close(self) -> None:
        """Stop the brokers and free the handle; safe to call more than once."""
        with self._lock:
            mc, rk = self._mc, self._rk
            self._mc = self._rk = None
            if mc is not None:
                self._lib.rd_kafka_mock_cluster_destroy(mc)
            if rk is not None:
                self._lib.rd_kafka_destroy(rk)

    def __enter__(self) -> MockCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

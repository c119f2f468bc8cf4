"""The Spark session: started with its log kept to errors (``spark_log4j2.properties``, given
to the driver JVM before it starts), and :class:`SparkUnavailable` when pyspark or Java is
missing; the Hadoop file system of a path, and Spark's errors in one line."""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import SpilloverError

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import SparkSession

__all__ = [
    "STATUS_STORE",
    "SparkUnavailable",
    "file_system",
    "first_line",
    "session",
    "session_settings",
]


class SparkUnavailable(SpilloverError):
    """pyspark is not installed, or Spark could not start (no Java)."""


# -- the session ----------------------------------------------------------------------------


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(
            "the Spark engine needs pyspark: pip install 'spillover[spark]'"
        ) from None
    _quiet_pandas_note()
    return pyspark


def _quiet_pandas_note() -> None:
    """Import ``pyspark.testing.utils`` (which ``pyspark.sql`` imports on the way, for its
    type conversions) without the ``FutureWarning`` it raises once under pandas 3 ("PySpark
    does not yet fully support pandas >= 3.0.0"), which every Spark audit printed. The
    note is about pyspark's pandas API, which the Spark audit does not use (its tests
    compare it byte for byte with the numpy audit on the pandas installed); any other
    warning still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        with contextlib.suppress(ImportError):
            import pyspark.testing.utils  # noqa: F401


def session(
    master: str = "local[*]", conf: Mapping[str, str] | None = None, *, app: str | None = None
) -> SparkSession:
    """A Spark session on ``master`` with the settings ``conf`` (``spark.*`` keys), its
    log kept to errors and its web UI's past kept short (:data:`STATUS_STORE`, unless
    ``conf`` sets those keys). Raises :class:`SparkUnavailable` without pyspark or Java."""
    _pyspark()
    from pyspark.sql import SparkSession

    if os.environ.get("JAVA_HOME") is None and not _on_path("java"):
        raise SparkUnavailable(
            "the Spark engine needs Java 17 or newer: install it or set JAVA_HOME"
        )
    settings = session_settings(conf)
    name = app or __name__.partition(".")[0]
    builder = SparkSession.builder.master(master).appName(name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        _start_quiet_jvm(master, name, settings)
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: name the cause in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SparkUnavailable(f"Spark could not start on {master}: {first}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def session_settings(conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings :func:`session` starts Spark with: ``conf`` over spillover's own (no
    console progress bar, :data:`STATUS_STORE`), the driver's JVM options led by the one
    that keeps its log to errors (a log4j2 file given in ``conf`` comes later and wins).

    >>> s = session_settings({"spark.ui.retainedJobs": "50"})
    >>> s["spark.ui.retainedJobs"], s["spark.sql.ui.retainedExecutions"]
    ('50', '100')
    """
    settings = {"spark.ui.showConsoleProgress": "false", **STATUS_STORE, **(conf or {})}
    settings[_DRIVER_JAVA_OPTIONS] = " ".join(
        filter(None, [_quiet_log_option(), settings.get(_DRIVER_JAVA_OPTIONS, "")])
    )
    return settings


_DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
#: how much of its past the driver keeps for its web UI (Spark's defaults: 1,000 each).
#: An audit runs a hundred or more jobs, each with its plan; a session that serves many
#: (``simulate --engine spark``, a notebook) kept every plan of the last 1,000 in the
#: driver's heap, and a 1 GB driver ran out of memory in a broadcast late in a long run.
#: Given settings (``conf``, ``spark-submit --conf``) win.
STATUS_STORE = {
    "spark.sql.ui.retainedExecutions": "100",
    "spark.ui.retainedJobs": "500",
    "spark.ui.retainedStages": "500",
}
#: lines the JVM prints on stderr before any logging is set up, which no setting turns off:
#: Spark's launcher always adds the incubator module jdk.incubator.vector
_JVM_NOISE = re.compile(rb"^WARNING: Using incubator modules: ")


def _quiet_log_option() -> str:
    """The driver JVM option that makes it log errors only (``spark_log4j2.properties``):
    set before the JVM starts, so that its start-up warnings are not printed either."""
    from importlib import resources

    path = str(resources.files(__name__.rpartition(".")[0]).joinpath("spark_log4j2.properties"))
    option = f"-Dlog4j2.configurationFile={path}"
    return f'"{option}"' if any(c.isspace() for c in option) else option


def _relay_stderr(stream: Any) -> None:
    """Copy the driver JVM's stderr to this process's, less :data:`_JVM_NOISE` lines."""
    for line in iter(stream.readline, b""):
        if not _JVM_NOISE.match(line):
            with contextlib.suppress(OSError):  # stderr closed: nothing to tell
                os.write(2, line)


def _start_quiet_jvm(master: str, app: str, settings: Mapping[str, str]) -> None:
    """Start the driver JVM (when this process has none yet) with its stderr relayed through
    :func:`_relay_stderr`, and its SparkContext on ``master`` with ``settings``; the session
    builder's ``getOrCreate`` then takes that context. The JVM's stderr is otherwise this
    process's own, and the JVM prints a warning there that no log setting removes."""
    import subprocess
    import threading

    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return  # a JVM is running already (this process's, or the pyspark shell's)
    conf = SparkConf().setMaster(master).setAppName(app).setAll(list(settings.items()))
    launch: Callable[..., Any] = launch_gateway  # pyspark leaves it untyped
    gateway = launch(conf, popen_kwargs={"stderr": subprocess.PIPE})
    threading.Thread(
        target=_relay_stderr, args=(gateway.proc.stderr,), name="spark-stderr", daemon=True
    ).start()
    SparkContext(conf=conf, gateway=gateway)


def _on_path(program: str) -> bool:
    from shutil import which

    return which(program) is not None


def file_system(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """The Hadoop file system of ``path`` and the path as a Hadoop Path."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def first_line(exc: BaseException) -> str:
    """The first line of a Spark error that says what went wrong (no stack trace; not
    py4j's ``An error occurred while calling o12.collectToPython.`` before the Java error,
    which names the file a job could not read).

    >>> first_line(Exception("An error occurred while calling o7.json.\\n: org.x: bad file"))
    'org.x: bad file'
    """
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip().removeprefix(": ")
        if re.fullmatch(r"An error occurred while calling [\w.]+\.", line):
            continue
        if line and not line.startswith(("JVM stacktrace", "at ")):
            return line[:300]
    return type(exc).__name__

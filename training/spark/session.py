"""A Spark session for the training job: embedded ``local[*]`` by default, quiet, Arrow on, UTC."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from training.errors import EngineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["DEFAULT_MASTER", "partitions_of", "spark_session"]

logger = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"

#: Settings the engine needs; ``--spark-conf`` overrides any of them.
_DEFAULTS: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "4g",
    "spark.sql.shuffle.partitions": "16",
}


def _require_runtime() -> None:
    """Raise EngineError naming what is missing: pyspark or a Java runtime."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise EngineError(
            "--engine spark needs pyspark: pip install 'orderlift[spark]' (or train with --engine local)"
        ) from exc
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and shutil.which("java") is None:
        raise EngineError(
            "--engine spark needs a Java runtime (17 or newer) and none is on PATH or in JAVA_HOME: "
            "apt-get install openjdk-17-jre-headless, or train with --engine local"
        )


def _code_zip(directory: Path) -> Path:
    """Zip the features and training packages for executors on another machine."""
    root = Path(__file__).resolve().parents[2]
    target = directory / "orderlift_code.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for package in ("features", "training"):
            for path in (root / package).rglob("*.py"):
                archive.write(path, path.relative_to(root))
    return target


@contextmanager
def spark_session(
    master: str = DEFAULT_MASTER, conf: Mapping[str, str] | None = None
) -> Iterator[SparkSession]:
    """Start a Spark session on ``master`` and stop it afterwards; join (and leave running) an active one.

    Python workers run this interpreter. On a master that is not ``local``, the ``features`` and
    ``training`` packages are shipped to the executors, which need the same Python packages.
    """
    _require_runtime()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no "resolves to a loopback address" warning
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
    with tempfile.TemporaryDirectory(prefix="orderlift-spark-") as scratch:
        quiet = Path(scratch) / "log4j2.properties"
        quiet.write_text(_LOG4J)
        settings = {**_DEFAULTS, "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{quiet}"}
        builder = SparkSession.builder.master(master).appName("orderlift-train")
        for key, value in {**settings, **(conf or {})}.items():
            builder = builder.config(key, value)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # py4j and the JVM raise many kinds; all mean "no session"
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"--spark-master {master}: Spark did not start ({first})") from exc
        spark.sparkContext.setLogLevel("ERROR")
        logger.info("spark %s on %s, %d cores", spark.version, master, spark.sparkContext.defaultParallelism)
        if not master.startswith("local"):
            spark.sparkContext.addPyFile(str(_code_zip(Path(scratch))))
        try:
            yield spark
        finally:
            spark.stop()


#: Spark's own logging: errors only, to stderr (its default prints INFO and WARN lines at start).
_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""


def partitions_of(spark: SparkSession) -> int:
    """Return how many partitions a per-user pass uses: the shuffle setting."""
    return int(spark.conf.get("spark.sql.shuffle.partitions") or 16)

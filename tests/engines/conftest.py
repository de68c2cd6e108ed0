"""A real Spark standalone cluster (a master and two workers, separate JVMs) and a Spark Connect
server on 127.0.0.1 for the cluster tests, started once and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spark_cluster import Cluster, connect_server, standalone_cluster


@pytest.fixture(scope="session")
def spark_cluster(java_home: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two workers of one core and 2 GiB each (this machine has two cores), all registered."""
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def connect_url(spark_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server whose executors run on ``spark_cluster``; stopped with its module,
    since as a cluster application it holds every core while it runs."""
    with connect_server(tmp_path_factory.mktemp("spark-connect"), spark_cluster.url) as url:
        yield url

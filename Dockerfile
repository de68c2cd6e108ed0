# fdp image: the fdp command with every extra (PostgreSQL, Spark, Airflow, AWS) and Java 17.
# One image runs the Spark master and worker, Airflow and one-off fdp commands in
# docker-compose.yml, so driver and executors always share the same Python and pyspark.

# ---- build: a wheel of fdp and a virtual environment holding it and its extras
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m venv /opt/fdp \
    && /opt/fdp/bin/pip install build==1.3.0 \
    && /opt/fdp/bin/python -m build --wheel --outdir /wheels . \
    && /opt/fdp/bin/pip install "$(ls /wheels/fdp-*.whl)[postgres,spark,airflow,aws]" \
    && /opt/fdp/bin/pip uninstall --yes build

# ---- runtime: slim Python, a headless JRE for Spark, no compilers, a non-root user
FROM python:3.11-slim-bookworm
# the JRE follows Debian's security updates, so it is not pinned to one patch release
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f /usr/bin/java)")")" /usr/lib/jvm/java-17 \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin fdp \
    && mkdir -p /data /opt/airflow && chown fdp:fdp /data /opt/airflow
COPY --from=build /opt/fdp /opt/fdp
COPY --chown=fdp:fdp dags /opt/airflow/dags
COPY --chown=fdp:fdp config /opt/fdp-config
ENV PATH=/opt/fdp/bin:$PATH \
    JAVA_HOME=/usr/lib/jvm/java-17 \
    SPARK_HOME=/opt/fdp/lib/python3.11/site-packages/pyspark \
    PYTHONUNBUFFERED=1 \
    TZ=UTC \
    FDP_DATA_DIR=/data \
    AIRFLOW_HOME=/opt/airflow
USER 10001:10001
WORKDIR /home/fdp
ENTRYPOINT ["tini", "--"]
CMD ["fdp", "--help"]

-- Run once by the postgres image on an empty data volume (psql, as the superuser).
-- One server, two databases: Airflow's metadata and fdp's warehouse. fdp creates and
-- migrates the warehouse tables itself; Grafana reads them through a read-only role.
\getenv grafana_password GRAFANA_DB_PASSWORD

CREATE DATABASE airflow;
CREATE DATABASE warehouse;

CREATE ROLE grafana LOGIN PASSWORD :'grafana_password';
REVOKE ALL ON DATABASE airflow FROM PUBLIC;

\connect warehouse
GRANT CONNECT ON DATABASE warehouse TO grafana;
GRANT USAGE ON SCHEMA public TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO grafana;

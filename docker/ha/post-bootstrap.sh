#!/bin/sh
# Patroni runs this once, on the node that initialises the cluster, with the superuser's
# connection string: the service's role and database, the role's password from
# POSTGRES_PASSWORD (as the postgres image does for its POSTGRES_USER).
set -eu
psql -v ON_ERROR_STOP=1 -v password="${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set}" "$1" <<'SQL'
CREATE ROLE pickpack LOGIN PASSWORD :'password';
CREATE DATABASE pickpack OWNER pickpack;
SQL

"""How the test session finds its PostgreSQL (devtools/harness/pg.py), beyond the order of the
sources that tests/domain/test_provisioning.py checks: the image the container path uses,
and that a Docker engine whose container cannot start falls back to the embedded server
instead of failing the session. The sources are replaced by stand-ins that record their
calls, so no container or server starts here."""

from __future__ import annotations

import pytest

from devtools.harness.pg import (
    DEFAULT_POSTGRES_IMAGE,
    ContainerFallbackWarning,
    ServerSource,
    Started,
)


class Sources:
    def __init__(self, *, docker: bool, container_error: Exception | None = None) -> None:
        self.docker = docker
        self.container_error = container_error
        self.calls: list[str] = []
        self.stopped: list[str] = []

    def docker_answers(self) -> bool:
        self.calls.append("docker?")
        return self.docker

    def container(self, image: str) -> Started:
        self.calls.append(f"container {image}")
        if self.container_error is not None:
            raise self.container_error
        return "postgresql://test:test@localhost:32768/test", lambda: self.stopped.append("c")

    def embedded(self) -> Started:
        self.calls.append("embedded")
        return "postgresql://embedded/postgres", lambda: self.stopped.append("e")

    def source(self) -> ServerSource:
        return ServerSource(
            docker_answers=self.docker_answers, container=self.container, embedded=self.embedded
        )


@pytest.fixture(autouse=True)
def no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PICKPACK_TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("TESTCONTAINERS_POSTGRES_IMAGE", raising=False)


def test_a_docker_engine_gives_a_container_of_the_default_image() -> None:
    sources = Sources(docker=True)
    source = sources.source()
    assert source.kind == "testcontainers"
    assert sources.calls == ["docker?", f"container {DEFAULT_POSTGRES_IMAGE}"]
    source.close()
    assert sources.stopped == ["c"]


def test_testcontainers_postgres_image_selects_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTCONTAINERS_POSTGRES_IMAGE", "postgres:16")
    sources = Sources(docker=True)
    sources.source()
    assert sources.calls == ["docker?", "container postgres:16"]


def test_a_container_that_cannot_start_falls_back_to_embedded_with_one_line_warning() -> None:
    # What docker-py raises when the image is absent and no registry answers the pull.
    error = RuntimeError(
        "500 Server Error for http+docker://localhost/v1.41/images/create: "
        '"Get https://registry.invalid/v2/: dial tcp: lookup registry.invalid: '
        'no such host"\nsecond line of detail'
    )
    sources = Sources(docker=True, container_error=error)
    with pytest.warns(ContainerFallbackWarning) as caught:
        source = sources.source()
    assert (source.kind, source.url) == ("embedded", "postgresql://embedded/postgres")
    assert sources.calls == ["docker?", f"container {DEFAULT_POSTGRES_IMAGE}", "embedded"]
    [warning] = caught
    message = str(warning.message)
    assert "\n" not in message
    assert DEFAULT_POSTGRES_IMAGE in message and "embedded" in message
    assert "registry.invalid" in message and "second line" not in message
    source.close()
    assert sources.stopped == ["e"]

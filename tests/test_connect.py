"""connect.Source: the choice between a data folder and Neo4j, made once in the library."""

from __future__ import annotations

import pytest

from spillover import examples
from spillover.connect import Source
from spillover.errors import SpilloverError

ENV = {"NEO4J_URI": "bolt://env:7687", "NEO4J_USER": "envuser", "NEO4J_PASSWORD": "envpw"}


def test_a_data_folder_wins_over_a_uri_in_the_environment():
    source = Source.choose(examples.jiang_case_path(), env=ENV, region="CN")
    assert source.neo4j is None
    assert source.data == examples.jiang_case_path()
    assert source.region == "CN"


def test_without_a_data_folder_the_environment_names_the_database():
    source = Source.choose(None, env=ENV)
    assert source.data is None and source.data_text is None
    assert source.neo4j is not None
    assert (source.neo4j.uri, source.neo4j.user, source.neo4j.password) == (
        "bolt://env:7687",
        "envuser",
        "envpw",
    )


def test_options_given_win_over_the_environment():
    source = Source.choose(None, "bolt://given:7687", "me", "", "db2", env=ENV)
    assert source.neo4j is not None
    assert (source.neo4j.uri, source.neo4j.user, source.neo4j.password) == (
        "bolt://given:7687",
        "me",
        "",
    )
    assert source.neo4j.database == "db2"


def test_a_uri_given_with_a_data_folder_is_kept_and_refused_when_opened():
    source = Source.choose(examples.jiang_case_path(), "bolt://given:7687", env=ENV)
    assert source.data is not None and source.neo4j is not None
    with pytest.raises(SpilloverError, match="not both"), source.open():
        pass


def test_an_empty_uri_given_counts_as_given():
    # as the command line did: --neo4j-uri "" with --data keeps the environment's URI
    source = Source.choose(examples.jiang_case_path(), "", env=ENV)
    assert source.neo4j is not None and source.neo4j.uri == "bolt://env:7687"


def test_nothing_given_is_refused_when_opened():
    source = Source.choose(None, env={})
    assert source.data is None and source.neo4j is None
    with pytest.raises(SpilloverError, match="no graph given"), source.open():
        pass


def test_the_data_folder_is_kept_as_typed():
    source = Source.choose("hdfs://nn/data", env={})
    assert source.data_text == "hdfs://nn/data"
    assert source.neo4j is None


def test_a_folder_source_opens_the_embedded_backend():
    with Source.choose(str(examples.jiang_case_path()), env=ENV).open() as backend:
        assert backend.names(["person:jiang"]) == {"person:jiang": "Jiang (bakery owner)"}

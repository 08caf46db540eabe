"""examples/n8n: both workflows are importable n8n workflows, and the requests their nodes make work.

n8n is not run here (it is a large install). Instead each transcription node's request is built from the
node's own parameters the way n8n builds it, and sent to a live gateway:

- HTTP Request node (typeVersion >= 4.2): a multipart body with the node's fields in the node's order,
  the binary field as a file part named after the file the upstream node read, to the node's URL path;
- OpenAI node (audio / transcribe): ``model=whisper-1``, then ``language`` / ``temperature`` when set, then
  ``file``, to the credential's Base URL + ``/audio/transcriptions`` (see n8n's transcribe.operation.ts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.corpus import clip
from tests.formdata import Parts, multipart
from tests.node import ROOT
from tests.server import LiveServer, live_server
from tests.wer import wer

N8N = ROOT / "examples" / "n8n"
SPEECH = clip("ss_0870")
OPENAI_NODE = "@n8n/n8n-nodes-langchain.openAi"
HTTP_NODE = "n8n-nodes-base.httpRequest"
READ_NODE = "n8n-nodes-base.readWriteFile"
TRIGGER = "n8n-nodes-base.manualTrigger"
GATEWAY = "http://gateway:8000"  # the host the examples name (a Compose service next to n8n)
BASE_URL_PATH = "/v1"  # the OpenAI credential's Base URL is http://gateway:8000/v1 (examples/n8n/README.md)

Workflow = dict[str, Any]
Node = dict[str, Any]


def load(name: str) -> Workflow:
    return dict(json.loads((N8N / name).read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("n8n") / "server.log") as running:
        yield running


def check_workflow(workflow: Workflow) -> dict[str, Node]:
    """The shape n8n's importer needs; returns the nodes by name."""
    assert isinstance(workflow["name"], str)
    assert workflow["name"]
    nodes = workflow["nodes"]
    names = [n["name"] for n in nodes]
    assert len(set(names)) == len(names), f"node names must be unique: {names}"
    ids = [n["id"] for n in nodes]
    assert len(set(ids)) == len(ids)
    for node in nodes:
        assert isinstance(node["type"], str)
        assert isinstance(node["typeVersion"], int | float)
        assert isinstance(node["parameters"], dict)
        assert len(node["position"]) == 2
        assert all(isinstance(c, int | float) for c in node["position"])
    by_name = {n["name"]: n for n in nodes}
    for source, outputs in workflow["connections"].items():
        assert source in by_name, f"connection from a node that does not exist: {source!r}"
        for kind, branches in outputs.items():
            assert kind == "main"
            for branch in branches:
                for target in branch:
                    assert target["node"] in by_name, f"connection to a node that does not exist: {target['node']!r}"
                    assert target["type"] == "main"
                    assert target["index"] == 0
    return by_name


def upstream(workflow: Workflow, by_name: dict[str, Node], name: str) -> Node:
    """The one node whose output feeds ``name``."""
    sources = [
        source
        for source, outputs in workflow["connections"].items()
        for branch in outputs["main"]
        for target in branch
        if target["node"] == name
    ]
    assert len(sources) == 1, (name, sources)
    return by_name[sources[0]]


def check_path_from_trigger(workflow: Workflow, by_name: dict[str, Node], name: str) -> Node:
    """The chain Manual Trigger -> Read/Write Files from Disk -> ``name``; returns the read node."""
    read = upstream(workflow, by_name, name)
    assert read["type"] == READ_NODE
    assert read["parameters"].get("operation", "read") == "read"
    trigger = upstream(workflow, by_name, read["name"])
    assert trigger["type"] == TRIGGER
    return read


def binary_field(read: Node) -> str:
    return str(read["parameters"].get("options", {}).get("dataPropertyName", "data"))


def the_file(read: Node) -> tuple[str, str, bytes]:
    """What the read node outputs for a real clip: the file name from its path, n8n's MIME type for .wav."""
    file_name = PurePosixPath(read["parameters"]["fileSelector"]).name
    assert file_name.endswith(".wav")
    return file_name, "audio/wav", SPEECH.path.read_bytes()


def post(server: LiveServer, path: str, parts: Parts, timeout: float, headers: dict[str, str] | None = None) -> Any:
    content_type, body = multipart(parts)
    response = httpx.post(
        server.base_url + path,
        content=body,
        headers={"content-type": content_type, "user-agent": "n8n", **(headers or {})},
        timeout=timeout,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_openai_node_workflow(server: LiveServer) -> None:
    workflow = load("openai-node-workflow.json")
    by_name = check_workflow(workflow)
    [node] = [n for n in by_name.values() if n["type"] == OPENAI_NODE]
    params = node["parameters"]
    assert params["resource"] == "audio"
    assert params["operation"] == "transcribe"
    assert "openAiApi" in node["credentials"], "the Base URL is set on an OpenAI credential"
    read = check_path_from_trigger(workflow, by_name, node["name"])
    assert params.get("binaryPropertyName", "data") == binary_field(read)

    # The request n8n's transcribe operation makes, to the credential's Base URL, with its API key
    options = params.get("options", {})
    fields: Parts = [("model", "whisper-1")]
    if options.get("language"):
        fields.append(("language", options["language"]))
    if options.get("temperature"):
        fields.append(("temperature", str(options["temperature"])))
    fields.append(("file", the_file(read)))
    answer = post(
        server, BASE_URL_PATH + "/audio/transcriptions", fields, timeout=120, headers={"authorization": "Bearer n8n"}
    )
    assert set(answer) == {"text", "usage"}
    assert wer(SPEECH.reference, answer["text"]) < 0.1, answer["text"]


def http_nodes(by_name: dict[str, Node]) -> dict[str, Node]:
    """The HTTP Request nodes by their URL's path."""
    return {urlsplit(n["parameters"]["url"]).path: n for n in by_name.values() if n["type"] == HTTP_NODE}


def test_http_request_workflow(server: LiveServer) -> None:
    workflow = load("http-request-workflow.json")
    by_name = check_workflow(workflow)
    nodes = http_nodes(by_name)
    assert set(nodes) == {"/v1/audio/transcriptions", "/v1/asr/transcribe/audio"}

    answers = {}
    for path, node in nodes.items():
        params = node["parameters"]
        assert node["typeVersion"] >= 4.2, "4.2 and later send the fields in the node's order"
        assert params["method"] == "POST"
        assert params["url"] == GATEWAY + path
        assert params["sendBody"] is True
        assert params["contentType"] == "multipart-form-data"
        assert params["options"]["timeout"] >= 600_000, "long files need a raised timeout"
        read = check_path_from_trigger(workflow, by_name, node["name"])

        parts: Parts = []
        for field in params["bodyParameters"]["parameters"]:
            if field.get("parameterType") == "formBinaryData":
                assert field["inputDataFieldName"] == binary_field(read)
                parts.append((field["name"], the_file(read)))
            else:
                assert field.get("parameterType", "formData") == "formData"
                assert not str(field["value"]).startswith("="), "an n8n expression: the replay would not be exact"
                parts.append((field["name"], str(field["value"])))
        names = [name for name, _ in parts]
        assert len(set(names)) == len(names)
        assert names[0] == "file"
        answers[path] = (dict(parts), post(server, path, parts, timeout=params["options"]["timeout"] / 1000))

    fields, answer = answers["/v1/audio/transcriptions"]
    assert fields["model"] == "whisper-1"
    assert set(answer) == {"text", "usage"}
    assert wer(SPEECH.reference, answer["text"]) < 0.1, answer["text"]

    fields, answer = answers["/v1/asr/transcribe/audio"]
    assert fields["process_type"] in ("full", "chunked")
    assert set(answer) == {"text", "language", "request_id"}
    assert answer["language"] == "en"
    assert answer["request_id"]
    assert wer(SPEECH.reference, answer["text"]) < 0.1, answer["text"]


def test_readme_names_what_a_user_must_set() -> None:
    readme = (N8N / "README.md").read_text(encoding="utf-8")
    needles = ["Base URL", "http://gateway:8000/v1", "/audio/transcriptions", "600000", "MODEL_ALIASES", "whisper-1"]
    for needle in [*needles, "openai-node-workflow.json", "http-request-workflow.json"]:
        assert needle in readme, needle

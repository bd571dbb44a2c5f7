"""The KServe insides predictor/kserve_seam.py relies on exist on the pinned kserve: an upgrade
that renames one fails here, naming it, instead of at the server's start-up. Each check builds
the KServe object the seam reads and reads it through the seam."""
import inspect

from kserve import ModelServer
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferInput
from kserve.protocol.rest.server import RESTServer
import pytest

from predictor import kserve_seam
from predictor.errors import InvalidInput


def test_the_module_globals_of_kserve_model_server():
    assert hasattr(kserve_seam.rest_app(), "add_exception_handler")          # the FastAPI app
    assert hasattr(kserve_seam.parsed_args(), "grpc_max_receive_message_length")


def test_a_data_plane_keeps_its_model_registry():
    registry = ModelRepository()
    assert kserve_seam.model_registry(DataPlane(model_registry=registry)) is registry


def test_a_model_server_has_the_slots_the_seam_reads_and_writes():
    server = ModelServer(http_port=0, grpc_port=0, enable_grpc=True, registered_models=ModelRepository())
    assert kserve_seam.uvicorn_server(server) is None                          # not started: no REST server yet
    assert kserve_seam.take_over_grpc(server) is True and server.enable_grpc is False
    assert kserve_seam.grpc_server(server) is None
    kserve_seam.set_grpc_server(server, "ours")
    assert kserve_seam.grpc_server(server) == "ours"
    # the method DrainingModelServer overrides to take uvicorn's signals and swap the ASGI app
    assert inspect.iscoroutinefunction(ModelServer._serve)


def test_a_rest_server_has_a_uvicorn_server_and_a_config_app():
    class Holder:
        _rest_server = RESTServer("kserve.model_server:app", DataPlane(model_registry=ModelRepository()), None, http_port=0)
    assert hasattr(kserve_seam.uvicorn_server(Holder), "should_exit")
    kserve_seam.serve_asgi_app(Holder, "an app")
    assert Holder._rest_server.config.app == "an app"


def test_an_infer_input_keeps_its_raw_bytes():
    assert kserve_seam.raw_data(InferInput("x", [1], "FP32")) is None


def test_kserve_s_grpc_checks_come_back_as_the_predictor_s_invalid_input():
    message = pb.ModelInferRequest(model_name="m", inputs=[pb.ModelInferRequest.InferInputTensor(name="a", datatype="FP32", shape=[1])],
                                   raw_input_contents=[b"", b""])
    with pytest.raises(InvalidInput, match="does not match the expected number of raw input contents"):
        kserve_seam.validate_grpc_request(message)

"""tritonclient and kserve both register the protobuf package `inference` (different files, same
message names), so they cannot be imported into one process. The tritonclient tests therefore
run in a pytest process of their own (`bash .ci/test` runs both); a plain `pytest` leaves them
out unless they are named on the command line."""

TRITONCLIENT_TESTS = "test_predictor_server.py"


def pytest_ignore_collect(collection_path, config):
    if collection_path.name == TRITONCLIENT_TESTS:
        return not any(TRITONCLIENT_TESTS in str(arg) for arg in config.args)
    return None

"""Stock KServe, the baseline: a plain kserve.Model serving a TorchScript file the way KServe's
custom-predictor docs write one (synchronous predict, one request per forward pass), under
KServe's ModelServer with its defaults.

    python bench/baselines/stock_kserve.py --model_dir DIR --model_name NAME --http_port P --grpc_port Q
"""
import argparse
from pathlib import Path

import kserve
import torch
from kserve import InferOutput, InferRequest, InferResponse, model_server
from kserve.utils.utils import generate_uuid

torch.set_num_threads(1)


class StockTorchModel(kserve.Model):
    def __init__(self, name: str, model_dir: str, output: str):
        super().__init__(name)
        self.model_dir, self.output = Path(model_dir), output

    def load(self) -> bool:
        self.module = torch.jit.load(str(self.model_dir / "model.pt")).eval()
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers=None) -> InferResponse:
        x = torch.from_numpy(payload.inputs[0].as_numpy())
        with torch.inference_mode():
            y = self.module(x).numpy()
        out = InferOutput(name=self.output, shape=list(y.shape), datatype="FP32")
        out.set_data_from_numpy(y, binary_data=False)
        return InferResponse(model_name=self.name, infer_outputs=[out], response_id=payload.id or generate_uuid())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--output", required=True)
    args, _ = parser.parse_known_args()
    model = StockTorchModel(args.model_name, args.model_dir, args.output)
    model.load()
    kserve.ModelServer().start([model])
